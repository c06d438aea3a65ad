//! A TLS ClientHello parser that finds the server name (SNI). It takes the
//! bytes a client sent so far, reassembles the handshake message across as
//! many TLS records as it spans, and either finds the hello, asks for more
//! bytes, or rejects the input. It never panics and never reads past the
//! slice: every length is checked before it is used.

/// The most bytes of records that may precede a complete ClientHello.
/// Real hellos are a few hundred bytes; post-quantum key shares bring them
/// near 2 KiB, so 16 KiB leaves room without letting a peer park memory.
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;
/// The largest plaintext record TLS allows (2^14).
const MAX_RECORD: usize = 16 * 1024;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;

/// What a complete ClientHello says about routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` of the hello: 0x0301 for TLS 1.0 up to 0x0303,
    /// which TLS 1.3 hellos also carry.
    pub legacy_version: u16,
    /// The host name of the SNI extension, lowercased and without a
    /// trailing dot; `None` when the client sent no SNI.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The bytes so far are a valid prefix; more are needed.
    #[error("incomplete ClientHello")]
    Incomplete,
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("record version {0:#06x} is not TLS")]
    RecordVersion(u16),
    #[error("TLS record longer than 2^14 bytes")]
    RecordTooLong,
    #[error("empty handshake record")]
    EmptyRecord,
    #[error("first handshake message is not a ClientHello")]
    NotClientHello,
    #[error("ClientHello larger than {MAX_HELLO_BYTES} bytes")]
    TooLarge,
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
}

/// Parses the ClientHello at the start of `input`, the bytes a client sent
/// on a fresh connection. Bytes after the hello are ignored.
pub fn parse_client_hello(input: &[u8]) -> Result<ClientHello, HelloError> {
    let mut message: Vec<u8> = Vec::new();
    let mut rest = input;
    loop {
        if let Some(body) = complete_message(&message)? {
            return parse_body(body);
        }
        let fragment = next_record(&mut rest, message.is_empty())?;
        if message.len() + fragment.len() > MAX_HELLO_BYTES + HANDSHAKE_HEADER {
            return Err(HelloError::TooLarge);
        }
        message.extend_from_slice(fragment);
    }
}

/// The ClientHello body once `message` holds all of it. Checks the
/// handshake header as soon as its bytes are there, so garbage is refused
/// without waiting for the length it claims.
fn complete_message(message: &[u8]) -> Result<Option<&[u8]>, HelloError> {
    if let Some(&kind) = message.first() {
        if kind != HANDSHAKE_CLIENT_HELLO {
            return Err(HelloError::NotClientHello);
        }
    }
    let Some(header) = message.get(..HANDSHAKE_HEADER) else {
        return Ok(None);
    };
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    if len > MAX_HELLO_BYTES {
        return Err(HelloError::TooLarge);
    }
    Ok(message.get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + len))
}

/// Takes the next handshake record's fragment off `rest`. The header is
/// checked byte by byte as it arrives, so a peer that speaks another
/// protocol is told apart after its first byte.
fn next_record<'a>(rest: &mut &'a [u8], first: bool) -> Result<&'a [u8], HelloError> {
    let input = *rest;
    match input.first() {
        None => return Err(HelloError::Incomplete),
        Some(&CONTENT_HANDSHAKE) => {}
        Some(_) => return Err(HelloError::NotHandshake),
    }
    if let Some(&major) = input.get(1) {
        let minor = input.get(2).copied().unwrap_or(0);
        // SSL 3.0 to TLS 1.3; TLS 1.3 hellos still say 0x0301 or 0x0303.
        if major != 3 || minor > 4 {
            return Err(HelloError::RecordVersion(
                u16::from(major) << 8 | u16::from(minor),
            ));
        }
    }
    let Some(header) = input.get(..RECORD_HEADER) else {
        return Err(HelloError::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len > MAX_RECORD {
        return Err(HelloError::RecordTooLong);
    }
    if len == 0 {
        return Err(HelloError::EmptyRecord);
    }
    if first {
        // The first fragment byte is the handshake type: refuse at once
        // what cannot become a ClientHello.
        if let Some(&kind) = input.get(RECORD_HEADER) {
            if kind != HANDSHAKE_CLIENT_HELLO {
                return Err(HelloError::NotClientHello);
            }
        }
    }
    let Some(fragment) = input.get(RECORD_HEADER..RECORD_HEADER + len) else {
        return Err(HelloError::Incomplete);
    };
    *rest = &input[RECORD_HEADER + len..];
    Ok(fragment)
}

/// A cursor over a complete message: running out of bytes here means the
/// message lied about its lengths, not that more input is coming.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if self.0.len() < n {
            return Err(HelloError::Malformed(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let len = self.u8(what)?;
        self.take(usize::from(len), what)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], HelloError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_body(body: &[u8]) -> Result<ClientHello, HelloError> {
    let mut r = Reader(body);
    let legacy_version = r.u16("version")?;
    if legacy_version >> 8 != 3 {
        return Err(HelloError::Malformed("version"));
    }
    r.take(32, "random")?;
    if r.vec8("session id")?.len() > 32 {
        return Err(HelloError::Malformed("session id"));
    }
    let suites = r.vec16("cipher suites")?;
    if suites.is_empty() || !suites.len().is_multiple_of(2) {
        return Err(HelloError::Malformed("cipher suites"));
    }
    if r.vec8("compression methods")?.is_empty() {
        return Err(HelloError::Malformed("compression methods"));
    }
    // TLS 1.0 and 1.1 hellos may end here, without extensions.
    if r.is_empty() {
        return Ok(ClientHello {
            legacy_version,
            server_name: None,
        });
    }
    let mut extensions = Reader(r.vec16("extensions")?);
    if !r.is_empty() {
        return Err(HelloError::Malformed("bytes after the extensions"));
    }
    let mut server_name = None;
    while !extensions.is_empty() {
        let kind = extensions.u16("extension type")?;
        let data = extensions.vec16("extension data")?;
        if kind == EXT_SERVER_NAME {
            if server_name.is_some() {
                return Err(HelloError::Malformed("two server_name extensions"));
            }
            server_name = Some(parse_server_name(data)?);
        }
    }
    Ok(ClientHello {
        legacy_version,
        server_name,
    })
}

/// The host name of a `server_name` extension (RFC 6066, section 3).
fn parse_server_name(data: &[u8]) -> Result<String, HelloError> {
    let mut outer = Reader(data);
    let mut list = Reader(outer.vec16("server name list")?);
    if !outer.is_empty() || list.is_empty() {
        return Err(HelloError::Malformed("server name list"));
    }
    let mut host = None;
    while !list.is_empty() {
        let kind = list.u8("server name type")?;
        let name = list.vec16("server name")?;
        if kind == NAME_TYPE_HOST && host.is_none() {
            host = Some(host_name(name)?);
        }
    }
    host.ok_or(HelloError::Malformed("no host_name in server_name"))
}

/// A DNS host name as routing compares it: labels of 1 to 63 ASCII
/// letters, digits, `-` or `_`, joined by dots, lowercased, one trailing
/// dot dropped.
fn host_name(raw: &[u8]) -> Result<String, HelloError> {
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    let label_ok = |l: &[u8]| (1..=63).contains(&l.len()) && l.iter().all(allowed);
    if raw.len() > 253 || !raw.split(|&b| b == b'.').all(label_ok) {
        return Err(HelloError::Malformed("host name"));
    }
    Ok(raw.iter().map(|b| b.to_ascii_lowercase() as char).collect())
}
