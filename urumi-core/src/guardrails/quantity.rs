//! Kubernetes quantities as numbers: CPU in millicores, memory and storage in bytes.
//!
//! ```text
//!  PlanSize { cpu_limit: "2", memory_limit: "2Gi" }
//!        │ cpu_millis("2") = 2000        bytes("2Gi") = 2147483648
//!        ▼
//!  arithmetic (per-container defaults, engine shares, fit checks)
//!        │ format_cpu(500) = "500m"      format_bytes(536870912) = "512Mi"
//!        ▼
//!  k8s-openapi Quantity
//! ```
//!
//! Only the forms people write are accepted: a decimal number with an optional suffix
//! (`m`, `k`, `M`, `G`, `T`, `P`, `E`, `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`). Exponent
//! forms (`1e3`) are refused. Fractions below the unit are rounded up, so a parsed
//! request is never smaller than what was written.

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    /// The string as given (at most 32 characters).
    pub input: String,
}

impl std::fmt::Display for QuantityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a Kubernetes quantity such as 500m, 2, 512Mi or 10Gi",
            self.input
        )
    }
}

impl std::error::Error for QuantityError {}

/// Parses `s` into (numerator, denominator) of its value in base units, e.g.
/// `"1.5Ki"` → 1536/1 and `"250m"` → 250/1000.
fn parse(s: &str) -> Result<(u128, u128), QuantityError> {
    let err = || QuantityError {
        input: s.chars().take(32).collect(),
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let (mul, div): (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ => return Err(err()),
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 9 {
        return Err(err());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| err())?
    };
    let scale = 10u128.pow(frac.len() as u32);
    let frac_v: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err())?
    };
    // Checked throughout: a 39-digit quantity must be an error, not an overflow.
    let numer = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_v))
        .and_then(|v| v.checked_mul(mul))
        .ok_or_else(err)?;
    Ok((numer, scale * div))
}

fn to_units(s: &str, per_unit: u128) -> Result<u64, QuantityError> {
    let too_big = || QuantityError {
        input: s.chars().take(32).collect(),
    };
    let (n, d) = parse(s)?;
    let v = n.checked_mul(per_unit).ok_or_else(too_big)?.div_ceil(d);
    u64::try_from(v).map_err(|_| too_big())
}

/// CPU in millicores: `"500m"` → 500, `"2"` → 2000, `"0.1"` → 100.
pub fn cpu_millis(s: &str) -> Result<u64, QuantityError> {
    to_units(s, 1000)
}

/// Memory or storage in bytes: `"512Mi"` → 536870912, `"1G"` → 1000000000.
pub fn bytes(s: &str) -> Result<u64, QuantityError> {
    to_units(s, 1)
}

/// Millicores as a quantity string: whole cores as `"2"`, otherwise `"500m"`.
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes as a quantity string in the largest binary unit that divides them exactly
/// (`"2Gi"`, `"512Mi"`), or plain bytes.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (suffix, size) in UNITS {
        if bytes != 0 && bytes.is_multiple_of(size) {
            return format!("{}{suffix}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Bytes rounded down to whole mebibytes, as a quantity string (`"409Mi"`): the form
/// used for shares of a budget, so that the parts never add up to more than the whole.
pub fn format_mebibytes_floor(bytes: u64) -> String {
    format_bytes(bytes / (1 << 20) * (1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_too_big_for_128_bits_are_errors_not_overflows() {
        // Found by cargo fuzz (urumi-core/fuzz, target settings_toml).
        for input in [
            "340282366920938463463374607431768211455.5",
            "340282366920938463463374607431768212",
            "340282366920938463463374607431768211455Ei",
        ] {
            assert!(cpu_millis(input).is_err(), "{input}");
            assert!(bytes(input).is_err(), "{input}");
        }
    }

    #[test]
    fn cpu_table() {
        for (input, want) in [
            ("500m", 500),
            ("1", 1000),
            ("2", 2000),
            ("0.1", 100),
            ("1.5", 1500),
            ("1000m", 1000),
            (".5", 500),
            ("1k", 1_000_000),
        ] {
            assert_eq!(cpu_millis(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn bytes_table() {
        for (input, want) in [
            ("512Mi", 512 << 20),
            ("1Gi", 1 << 30),
            ("1G", 1_000_000_000),
            ("1.5Ki", 1536),
            ("100", 100),
            ("10Gi", 10 << 30),
        ] {
            assert_eq!(bytes(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for input in [
            "",
            "m",
            "1e3",
            "1.2.3",
            "-1",
            "12 Mi",
            "1Zi",
            "abc",
            "1.0000000001",
        ] {
            assert!(bytes(input).is_err(), "{input:?} should be refused");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_cpu(500), "500m");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_bytes(512 << 20), "512Mi");
        assert_eq!(format_bytes(2 << 30), "2Gi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_mebibytes_floor((400 << 20) + 12345), "400Mi");
        for m in [1, 250, 999, 1000, 1500, 4000] {
            assert_eq!(cpu_millis(&format_cpu(m)), Ok(m));
        }
    }
}
