//! Any text as the server's `[provisioner]` TOML (`urumi_core::ProvisionerSettings`), then
//! `validate()`: never panics; settings that validate also give their guardrails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use urumi_core::ProvisionerSettings;

fuzz_target!(|text: &str| {
    let Ok(settings) = toml::from_str::<ProvisionerSettings>(text) else {
        return;
    };
    match settings.validate() {
        Ok(()) => {
            settings.guardrails().expect("validate() checked what guardrails() needs");
            let _ = settings.change_retention();
        }
        Err(e) => {
            assert_eq!(e.kind().as_str(), "invalid_config", "{e}");
            let _ = e.tenant_message();
        }
    }
});
