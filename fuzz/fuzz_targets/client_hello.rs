//! The ClientHello parser on arbitrary bytes: it must never panic, and a
//! prefix of accepted input is either the same hello or "need more".

#![no_main]

use libfuzzer_sys::fuzz_target;
use portunus_dataplane::sni::{parse_client_hello, HelloError};

fuzz_target!(|data: &[u8]| {
    let whole = parse_client_hello(data);
    if let Ok(hello) = &whole {
        if let Some(name) = &hello.server_name {
            assert!(!name.is_empty() && name.len() <= 253);
            assert!(!name.ends_with('.'));
            assert_eq!(name, &name.to_ascii_lowercase());
        }
        let half = &data[..data.len() / 2];
        match parse_client_hello(half) {
            Ok(h) => assert_eq!(&h, hello),
            Err(e) => assert_eq!(e, HelloError::Incomplete),
        }
    }
});
