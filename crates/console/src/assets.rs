//! The console's files, compiled in. Assets are served under a path that
//! carries a hash of all of them, so browsers may cache them forever and a
//! new build is fetched at once; the HTML shell that names that path is
//! never cached.

use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub struct Asset {
    /// The path under the versioned asset prefix.
    pub path: &'static str,
    pub mime: &'static str,
    pub body: &'static [u8],
}

macro_rules! assets {
    ($( $path:literal => $mime:expr, )*) => {
        /// Every file of the console but the HTML shell.
        pub const ASSETS: &[Asset] = &[
            $( Asset { path: $path, mime: $mime, body: include_bytes!(concat!("../web/", $path)) }, )*
        ];
    };
}

const JS: &str = "text/javascript; charset=utf-8";

assets! {
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "vendor/preact-htm.js" => JS,
    "js/main.js" => JS,
    "js/api.js" => JS,
    "js/ui.js" => JS,
    "js/chart.js" => JS,
    "js/history.js" => JS,
    "js/pages/onboarding.js" => JS,
    "js/pages/signin.js" => JS,
    "js/pages/account.js" => JS,
    "js/pages/clients.js" => JS,
    "js/pages/client.js" => JS,
    "js/pages/settings.js" => JS,
    "js/pages/dashboard.js" => JS,
    "js/pages/rules.js" => JS,
    "js/pages/rule_form.js" => JS,
    "js/pages/rule.js" => JS,
    "js/pages/tokens.js" => JS,
    "js/pages/users.js" => JS,
    "js/pages/user.js" => JS,
    "js/pages/audit.js" => JS,
    "js/pages/api.js" => JS,
}

const SHELL_TEMPLATE: &str = include_str!("../web/index.html");
const PREFIX_MARK: &str = "%ASSETS%";

/// The first 16 hex digits of SHA-256 over every asset's path and body.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for a in ASSETS {
        h.update(a.path.as_bytes());
        h.update([0]);
        h.update((a.body.len() as u64).to_le_bytes());
        h.update(a.body);
    }
    hex::encode(&h.finalize()[..8])
});

static SHELL: LazyLock<String> =
    LazyLock::new(|| SHELL_TEMPLATE.replace(PREFIX_MARK, &format!("/assets/{}", *VERSION)));

/// The HTML shell, naming this build's asset prefix.
pub fn shell() -> &'static str {
    &SHELL
}

/// The asset at `path` if `version` is this build's.
pub fn find(version: &str, path: &str) -> Option<&'static Asset> {
    if version != VERSION.as_str() {
        return None;
    }
    ASSETS.iter().find(|a| a.path == path)
}
