//! The identity and access commands: users, credentials and grants over
//! the operator API; password recovery, the setup token and audit pruning
//! directly on the data dir.

use super::output::Format;
use super::{http, maintenance_auth, users};
use clap::Subcommand;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RoleArg {
    /// A superadmin.
    Admin,
    #[default]
    User,
}

impl RoleArg {
    pub fn wire(self) -> &'static str {
        match self {
            RoleArg::Admin => "superadmin",
            RoleArg::User => "user",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Offline rotation of the first-run setup token for an unbootstrapped store
    ///
    /// Prints the token, valid 30 minutes. `serve` rotates it again when it
    /// starts. Exit 75 while a server holds the data dir.
    OnboardingToken,
    /// Add a user; prints a temporary password once (changed at first login).
    UserAdd {
        id: String,
        #[arg(long)]
        display_name: String,
        /// `admin` makes a superadmin.
        #[arg(long, value_enum, default_value_t)]
        role: RoleArg,
    },
    /// List users.
    UserList {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show user details.
    UserGet {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Change a user's display name or role, or disable or enable it.
    ///
    /// Disabling ends the user's Web sessions and refuses its tokens; the
    /// last active superadmin cannot be demoted or disabled.
    UserUpdate {
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// `admin` makes a superadmin.
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove a user with its grants, credentials, sessions and rules.
    UserRemove { id: String },
    /// Local password recovery against the data dir
    ///
    /// Stop `serve` first (exit 75 while it holds the data dir). Exit 8: no
    /// such user; users are never created. Without --temporary or
    /// --password-stdin, prompts twice without echo. Ends the user's Web
    /// sessions and revokes its API tokens unless --keep-api-tokens.
    ResetPassword {
        user_id: String,
        /// Generate a temporary password and print it (or, with
        /// --password-stdin, mark that one temporary); it must be changed
        /// at the next login.
        #[arg(long)]
        temporary: bool,
        /// Read the new password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Keep the user's API tokens (Web sessions still end).
        #[arg(long)]
        keep_api_tokens: bool,
    },
    /// Issue a bearer token for a user; printed once.
    CredentialIssue {
        user_id: String,
        #[arg(long)]
        label: String,
    },
    /// List credentials for a user.
    CredentialList {
        user_id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Revoke a credential.
    CredentialRevoke {
        user_id: String,
        credential_id: String,
    },
    /// Rotate a credential; the old token 401s at once
    ///
    /// The new token is printed once.
    CredentialRotate {
        user_id: String,
        credential_id: String,
    },
    /// Add a grant; prints its id.
    GrantAdd {
        #[arg(long)]
        user_id: String,
        /// A client name, or `*` for every client.
        #[arg(long)]
        client: String,
        #[arg(long)]
        listen_port_start: u32,
        #[arg(long)]
        listen_port_end: u32,
        /// `tcp`, `udp` or `tcp,udp`.
        #[arg(long)]
        protocols: String,
    },
    /// List grants.
    GrantList {
        #[arg(long)]
        user_id: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Revoke a grant and the rules that depended on it.
    GrantRevoke { grant_id: String },
    /// The durable audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prune the durable audit table
    ///
    /// Deletes rows older than --before, directly on the data dir (exit 75
    /// while a server holds it). Exit 2: malformed time.
    Prune {
        /// RFC 3339, e.g. 2024-05-01T00:00:00Z.
        #[arg(long)]
        before: String,
        /// Count, do not delete.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show audit rows, newest first, through the API.
    List {
        #[arg(long)]
        limit: Option<u32>,
        /// `allow` or `deny`.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

impl AccessCommand {
    pub async fn run(self, data_dir: &Path, server_url: Option<&str>) -> anyhow::Result<()> {
        let api = || -> anyhow::Result<http::ApiClient> {
            Ok(http::ApiClient::new(
                http::server_url(server_url, data_dir),
                http::operator_token()?,
            ))
        };
        use AccessCommand as C;
        match self {
            C::OnboardingToken => maintenance_auth::onboarding_token(data_dir),
            C::ResetPassword {
                user_id,
                temporary,
                password_stdin,
                keep_api_tokens,
            } => maintenance_auth::reset_password(
                data_dir,
                &user_id,
                temporary,
                password_stdin,
                keep_api_tokens,
            ),
            C::Audit {
                command: AuditCommand::Prune { before, dry_run },
            } => maintenance_auth::audit_prune(data_dir, &before, dry_run),
            C::Audit {
                command:
                    AuditCommand::List {
                        limit,
                        outcome,
                        since,
                        until,
                        cursor,
                        format,
                    },
            } => {
                let q = users::AuditFilter {
                    limit,
                    outcome,
                    since,
                    until,
                    cursor,
                };
                users::audit_list(&api()?, &q, format).await
            }
            C::UserAdd {
                id,
                display_name,
                role,
            } => users::user_add(&api()?, &id, &display_name, role).await,
            C::UserList { format } => users::user_list(&api()?, format).await,
            C::UserGet { id, format } => users::user_get(&api()?, &id, format).await,
            C::UserUpdate {
                id,
                display_name,
                role,
                disable,
                enable,
                format,
            } => {
                let change = users::UserChange {
                    display_name,
                    role,
                    disabled: (disable || enable).then_some(disable),
                };
                users::user_update(&api()?, &id, &change, format).await
            }
            C::UserRemove { id } => users::user_remove(&api()?, &id).await,
            C::CredentialIssue { user_id, label } => {
                users::credential_issue(&api()?, &user_id, &label).await
            }
            C::CredentialList { user_id, format } => {
                users::credential_list(&api()?, &user_id, format).await
            }
            C::CredentialRevoke {
                user_id,
                credential_id,
            } => users::credential_revoke(&api()?, &user_id, &credential_id).await,
            C::CredentialRotate {
                user_id,
                credential_id,
            } => users::credential_rotate(&api()?, &user_id, &credential_id).await,
            C::GrantAdd {
                user_id,
                client,
                listen_port_start,
                listen_port_end,
                protocols,
            } => {
                let g = users::NewGrant {
                    user_id,
                    client,
                    listen_port_start,
                    listen_port_end,
                    protocols,
                };
                users::grant_add(&api()?, &g).await
            }
            C::GrantList { user_id, format } => {
                users::grant_list(&api()?, user_id.as_deref(), format).await
            }
            C::GrantRevoke { grant_id } => users::grant_revoke(&api()?, &grant_id).await,
        }
    }
}
