//! The conformance suite, once per backend: `memory::case_*`, `sqlite::case_*`,
//! `postgres::case_*`.

mod memory {
    crate::state_cases!(crate::memory);
}

mod sqlite {
    crate::state_cases!(crate::sqlite);
}

mod postgres {
    crate::state_cases!(crate::postgres);
}
