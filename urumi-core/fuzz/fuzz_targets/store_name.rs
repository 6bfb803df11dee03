//! Any string into `StoreName::new`: never panics; an accepted name matches
//! `^[a-z][a-z0-9-]*[a-z0-9]$`, has 3–40 characters, is not reserved, and survives serde.
#![no_main]

use libfuzzer_sys::fuzz_target;
use urumi_core::store::{RESERVED_NAMES, RESERVED_PREFIXES, StoreName};

/// `^[a-z][a-z0-9-]*[a-z0-9]$`, written out.
fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
}

fuzz_target!(|name: &str| {
    let quoted = serde_json::to_string(name).expect("a str is JSON");
    match StoreName::new(name) {
        Ok(n) => {
            let s = n.as_str();
            assert_eq!(s, name, "accepted names are kept as given");
            assert!(is_label(s), "{s:?} does not match ^[a-z][a-z0-9-]*[a-z0-9]$");
            assert!((3..=40).contains(&s.len()), "{s:?} is not 3-40 characters");
            assert!(!RESERVED_NAMES.contains(&s), "{s:?} is reserved");
            assert!(
                !RESERVED_PREFIXES.iter().any(|p| s.starts_with(p)),
                "{s:?} has a reserved prefix"
            );
            let back: StoreName = serde_json::from_str(&quoted).expect("serde accepts it too");
            assert_eq!(back, n);
        }
        Err(e) => {
            assert_eq!(e.kind().as_str(), "invalid_name");
            assert_eq!(e.kind().http_status(), 422);
            let _ = e.tenant_message();
            assert!(
                serde_json::from_str::<StoreName>(&quoted).is_err(),
                "serde accepts {name:?}, which new() refuses"
            );
        }
    }
});
