//! Whole-number fields of request bodies: `19044` and `19044.0` alike, as JSON Schema counts both as an
//! `integer` (the document's type); `19044.5`, `1e400` or a number outside the field's type are refused.
//!
//! Use on a field with `#[serde(deserialize_with = "crate::domain::whole_number::deserialize")]`. Clients
//! written in languages with one number type (JavaScript, some JSON libraries) send `12.0` for 12; serde's
//! own integer deserializers refuse it.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{Error, Unexpected, Visitor};

/// Reads a whole number into `T` (any integer type), from a JSON integer or an integral float.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    deserializer.deserialize_any(WholeNumber(PhantomData))
}

struct WholeNumber<T>(PhantomData<T>);

/// 2^63 and 2^64 as floats: the first float each of `i64` and `u64` cannot hold.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl<'de, T> Visitor<'de> for WholeNumber<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number within the field's range")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
        let whole = v.is_finite() && v.fract() == 0.0;
        if whole && (0.0..TWO_POW_64).contains(&v) {
            // Exact: v is whole and within 0..2^64.
            return self.visit_u64(v as u64);
        }
        if whole && (-TWO_POW_63..0.0).contains(&v) {
            // Exact: v is whole and within -2^63..0.
            return self.visit_i64(v as i64);
        }
        Err(E::invalid_value(Unexpected::Float(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Days {
        #[serde(deserialize_with = "super::deserialize")]
        days: u32,
    }

    #[derive(Debug, Deserialize)]
    struct Offset {
        #[serde(deserialize_with = "super::deserialize")]
        offset: i32,
    }

    fn days(json: &str) -> Result<u32, String> {
        serde_json::from_str::<Days>(json)
            .map(|d| d.days)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integers_and_integral_floats_are_read_alike() {
        assert_eq!(days(r#"{"days": 19044}"#), Ok(19044));
        assert_eq!(days(r#"{"days": 19044.0}"#), Ok(19044));
        assert_eq!(days(r#"{"days": 1.9044e4}"#), Ok(19044));
        assert_eq!(days(r#"{"days": -0.0}"#), Ok(0));
        assert_eq!(days(r#"{"days": 4294967295.0}"#), Ok(u32::MAX));
        let offset = serde_json::from_str::<Offset>(r#"{"offset": -12.0}"#).map(|o| o.offset);
        assert_eq!(offset.ok(), Some(-12));
    }

    #[test]
    fn fractions_out_of_range_values_and_other_types_are_refused() {
        for json in [
            r#"{"days": 19044.5}"#,
            r#"{"days": 0.1}"#,
            r#"{"days": -1}"#,
            r#"{"days": -1.0}"#,
            r#"{"days": 4294967296}"#,
            r#"{"days": 4294967296.0}"#,
            r#"{"days": 1e300}"#,
            r#"{"days": "12"}"#,
            r#"{"days": null}"#,
            r#"{"days": true}"#,
        ] {
            let err = days(json).expect_err(json);
            assert!(err.contains("whole number"), "{json}: {err}");
        }
    }
}
