//! Money: amounts are `i64` minor units of an ISO 4217 currency inside the service, and exact decimal
//! strings only at the edges (API, exports). Parsing, formatting, currency conversion and tranche splits
//! live here so that no other module does arithmetic on decimal text or floats.

use std::fmt;

use rust_decimal::Decimal;

/// An ISO 4217 currency known to the pool, with the number of decimal places of its minor unit.
///
/// Only values from the static table exist (the fields are private), so `minor_digits` is always
/// small enough for the power-of-ten arithmetic below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_digits: u8,
}

impl Currency {
    /// The three-letter ISO 4217 code, e.g. `"USD"`.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimal places of the minor unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn minor_digits(self) -> u8 {
        self.minor_digits
    }

    /// `10^minor_digits`: how many minor units make one major unit.
    fn minor_per_major(self) -> u64 {
        10u64.pow(u32::from(self.minor_digits))
    }
}

const fn cur(code: &'static str, minor_digits: u8) -> Currency {
    Currency { code, minor_digits }
}

/// The currencies the pool accepts: major donor currencies plus those of countries that host UN
/// missions and offices. Minor digits follow ISO 4217, not everyday practice (IQD has 3 even though
/// fils are not in circulation), because donors' and IATI's systems use ISO.
const CURRENCIES: &[Currency] = &[
    // Donor and reserve currencies.
    cur("USD", 2),
    cur("EUR", 2),
    cur("GBP", 2),
    cur("CHF", 2),
    cur("CAD", 2),
    cur("AUD", 2),
    cur("NZD", 2),
    cur("NOK", 2),
    cur("SEK", 2),
    cur("DKK", 2),
    cur("ISK", 0),
    cur("JPY", 0),
    cur("KRW", 0),
    cur("CNY", 2),
    cur("INR", 2),
    // Africa.
    cur("KES", 2),
    cur("UGX", 0),
    cur("RWF", 0),
    cur("BIF", 0),
    cur("TZS", 2),
    cur("ETB", 2),
    cur("ERN", 2),
    cur("SOS", 2),
    cur("SSP", 2),
    cur("SDG", 2),
    cur("CDF", 2),
    cur("XAF", 0),
    cur("XOF", 0),
    cur("GNF", 0),
    cur("DJF", 0),
    cur("KMF", 0),
    cur("NGN", 2),
    cur("GHS", 2),
    cur("MZN", 2),
    cur("ZAR", 2),
    cur("EGP", 2),
    cur("MAD", 2),
    cur("DZD", 2),
    cur("TND", 3),
    cur("LYD", 3),
    cur("LRD", 2),
    cur("SLE", 2),
    cur("MRU", 2),
    cur("CVE", 2),
    cur("GMD", 2),
    cur("AOA", 2),
    cur("ZMW", 2),
    cur("MWK", 2),
    cur("MGA", 2),
    // Middle East and Asia.
    cur("LBP", 2),
    cur("SYP", 2),
    cur("YER", 2),
    cur("AFN", 2),
    cur("IQD", 3),
    cur("JOD", 3),
    cur("KWD", 3),
    cur("BHD", 3),
    cur("OMR", 3),
    cur("ILS", 2),
    cur("TRY", 2),
    cur("PKR", 2),
    cur("BDT", 2),
    cur("NPR", 2),
    cur("MMK", 2),
    cur("LKR", 2),
    cur("IDR", 2),
    cur("PHP", 2),
    cur("THB", 2),
    cur("VND", 0),
    cur("UAH", 2),
    // Americas and Pacific.
    cur("HTG", 2),
    cur("COP", 2),
    cur("BRL", 2),
    cur("MXN", 2),
    cur("PEN", 2),
    cur("CLP", 0),
    cur("GTQ", 2),
    cur("HNL", 2),
    cur("VUV", 0),
    cur("XPF", 0),
];

/// Looks a currency up by its ISO 4217 code. Case-sensitive: codes are stored and exchanged in
/// upper case, so `"usd"` is refused rather than silently normalised.
pub fn currency(code: &str) -> Option<Currency> {
    CURRENCIES.iter().copied().find(|c| c.code == code)
}

/// Every currency the pool accepts, in table order (e.g. for a currency picker).
pub fn currencies() -> &'static [Currency] {
    CURRENCIES
}

/// Why an amount, rate or split was refused. `Display` is phrased to follow a field name in an API
/// validation message ("amount must be greater than zero").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// The text was empty.
    Empty,
    /// The text is not `-?digits(.digits)?`, or percentages do not add up to 100.
    Malformed,
    /// More decimal places than the currency's minor unit allows.
    TooManyDecimals {
        /// The currency's minor digits.
        max: u8,
    },
    /// Zero or negative where only a positive amount makes sense.
    NotPositive,
    /// The result does not fit in `i64` minor units.
    Overflow,
    /// An exchange rate that is zero or negative.
    InvalidRate,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::Empty => f.write_str("must not be empty"),
            MoneyError::Malformed => f.write_str("must be a decimal number like 12500.00"),
            MoneyError::TooManyDecimals { max: 0 } => f.write_str("must be a whole number in this currency"),
            MoneyError::TooManyDecimals { max: 1 } => f.write_str("must have at most 1 decimal place"),
            MoneyError::TooManyDecimals { max } => write!(f, "must have at most {max} decimal places"),
            MoneyError::NotPositive => f.write_str("must be greater than zero"),
            MoneyError::Overflow => f.write_str("is too large"),
            MoneyError::InvalidRate => f.write_str("must be an exchange rate greater than zero"),
        }
    }
}

impl std::error::Error for MoneyError {}

/// Parses an exact decimal string into minor units of `currency`.
///
/// Accepts `-?digits(.digits)?` only: no `+`, exponent, spaces or separators, so that what a person
/// typed is exactly what is stored. Fewer decimals than the currency has are padded (`"12500"` USD is
/// 1250000); more are refused even when they are zeros (`"1.000"` USD), because a third decimal in a
/// USD amount usually means the wrong currency was picked.
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    if text.is_empty() {
        return Err(MoneyError::Empty);
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((int_part, frac_part)) => (int_part, frac_part),
        None => (unsigned, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let dot_without_digits = unsigned.contains('.') && frac_part.is_empty();
    if int_part.is_empty() || dot_without_digits || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(MoneyError::Malformed);
    }
    let max = currency.minor_digits;
    if frac_part.len() > usize::from(max) {
        return Err(MoneyError::TooManyDecimals { max });
    }
    // Accumulate in i128 so that i64::MIN (whose magnitude exceeds i64::MAX) can be parsed; the
    // checked operations bound arbitrarily long digit strings.
    let padding = usize::from(max) - frac_part.len();
    let digits = int_part
        .bytes()
        .chain(frac_part.bytes())
        .chain(std::iter::repeat_n(b'0', padding));
    let mut magnitude: i128 = 0;
    for digit in digits {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(digit - b'0')))
            .ok_or(MoneyError::Overflow)?;
    }
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| MoneyError::Overflow)
}

/// As [`parse_amount`], but zero and negative amounts are refused with [`MoneyError::NotPositive`]
/// (budgets, disbursements and pledges are always positive; reversals are separate entries).
pub fn parse_positive_amount(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let minor = parse_amount(text, currency)?;
    if minor <= 0 {
        return Err(MoneyError::NotPositive);
    }
    Ok(minor)
}

/// Formats minor units as a decimal string with exactly the currency's minor digits
/// (`1250000` USD → `"12500.00"`, JPY `1200` → `"1200"`). Total: works for every `i64`.
pub fn format_amount(minor: i64, currency: Currency) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    // unsigned_abs: i64::MIN has no positive i64 counterpart.
    let magnitude = minor.unsigned_abs();
    let width = usize::from(currency.minor_digits);
    if width == 0 {
        return format!("{sign}{magnitude}");
    }
    let per_major = currency.minor_per_major();
    let major = magnitude / per_major;
    let fraction = magnitude % per_major;
    format!("{sign}{major}.{fraction:0width$}")
}

/// Converts an amount of `from` into `to` at `rate` (units of `to` per one unit of `from`), rounding
/// to `to`'s minor unit with banker's rounding (half to even, as
/// [`rust_decimal::RoundingStrategy::MidpointNearestEven`]), so that rounding errors do not drift in one
/// direction across many conversions.
///
/// The product is computed exactly in integers rather than with `Decimal` multiplication, because
/// `Decimal` silently rounds products beyond 28 significant digits (a rate with 17 significant digits
/// times a large amount), which would round twice near a midpoint.
pub fn convert(original_minor: i64, from: Currency, rate: Decimal, to: Currency) -> Result<i64, MoneyError> {
    if rate <= Decimal::ZERO {
        return Err(MoneyError::InvalidRate);
    }
    // Normalising drops trailing zeros, which keeps the divisor below as small as possible.
    let rate = rate.normalize();
    let rate_mantissa = rate.mantissa().unsigned_abs();
    // original/10^from × mantissa/10^scale × 10^to = original × mantissa / 10^shift.
    let shift = i64::from(from.minor_digits) + i64::from(rate.scale()) - i64::from(to.minor_digits);
    let product = Wide::product(original_minor.unsigned_abs(), rate_mantissa);
    let magnitude = if shift <= 0 {
        let mut scaled = product;
        for _ in 0..shift.unsigned_abs() {
            scaled = scaled.mul_small(10).ok_or(MoneyError::Overflow)?;
        }
        scaled
    } else {
        product.div_pow10_half_even(shift.unsigned_abs())
    };
    // Half-even is symmetric around zero, so rounding the magnitude and restoring the sign is exact.
    let magnitude = i128::from(magnitude.to_u64().ok_or(MoneyError::Overflow)?);
    let signed = if original_minor < 0 { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| MoneyError::Overflow)
}

/// A 192-bit unsigned integer as little-endian 64-bit limbs: enough for an `i64` magnitude times a
/// 96-bit `Decimal` mantissa times 10^3, with room to spare. The `as u64` casts below deliberately keep
/// the low 64 bits of a `u128`: that is how a value is cut into limbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wide([u64; 3]);

impl Wide {
    /// `a × b`, exact: a 64-bit by 128-bit product always fits in 192 bits.
    fn product(a: u64, b: u128) -> Wide {
        let a = u128::from(a);
        let low = a * u128::from(b as u64);
        let high = a * (b >> 64);
        let middle = (low >> 64) + u128::from(high as u64);
        Wide([low as u64, middle as u64, ((high >> 64) + (middle >> 64)) as u64])
    }

    /// `self × factor`, or `None` past 192 bits.
    fn mul_small(self, factor: u64) -> Option<Wide> {
        let mut limbs = [0u64; 3];
        let mut carry: u128 = 0;
        for (out, limb) in limbs.iter_mut().zip(self.0) {
            let step = u128::from(limb) * u128::from(factor) + carry;
            *out = step as u64;
            carry = step >> 64;
        }
        (carry == 0).then_some(Wide(limbs))
    }

    /// `(self / divisor, self % divisor)` by schoolbook short division from the top limb.
    fn div_small(self, divisor: u64) -> (Wide, u64) {
        let mut limbs = [0u64; 3];
        let mut remainder: u128 = 0;
        for (out, limb) in limbs.iter_mut().zip(self.0).rev() {
            let current = (remainder << 64) | u128::from(limb);
            *out = (current / u128::from(divisor)) as u64;
            remainder = current % u128::from(divisor);
        }
        (Wide(limbs), remainder as u64)
    }

    /// `self / 10^exponent` rounded half to even (`exponent ≥ 1`).
    fn div_pow10_half_even(self, exponent: u64) -> Wide {
        let mut quotient = self;
        // Whether anything non-zero was dropped below the last digit: it breaks a tie upwards.
        let mut below_last_digit = false;
        let mut last_digit = 0;
        for step in 0..exponent {
            let (next, digit) = quotient.div_small(10);
            quotient = next;
            if step + 1 < exponent {
                below_last_digit |= digit != 0;
            } else {
                last_digit = digit;
            }
        }
        let odd = quotient.0[0] & 1 == 1;
        let round_up = last_digit > 5 || (last_digit == 5 && (below_last_digit || odd));
        if round_up { quotient.add_one() } else { quotient }
    }

    /// `self + 1`; callers only add one to a quotient, which is far below 2^192.
    fn add_one(self) -> Wide {
        let mut limbs = self.0;
        for limb in &mut limbs {
            let (sum, carried) = limb.overflowing_add(1);
            *limb = sum;
            if !carried {
                break;
            }
        }
        Wide(limbs)
    }

    fn to_u64(self) -> Option<u64> {
        (self.0[1] == 0 && self.0[2] == 0).then_some(self.0[0])
    }
}

/// Splits `total_minor` into parts by whole percentages (a tranche plan such as `[40, 40, 20]`).
///
/// Each part but the last is `floor(total × p / 100)`; the last absorbs the remainder so the parts add
/// up to the total exactly and no minor unit is created or lost. Percentages must add up to exactly
/// 100 ([`MoneyError::Malformed`] otherwise) and the total must not be negative
/// ([`MoneyError::NotPositive`]).
pub fn split_by_percent(total_minor: i64, percents: &[u32]) -> Result<Vec<i64>, MoneyError> {
    if total_minor < 0 {
        return Err(MoneyError::NotPositive);
    }
    let sum: u64 = percents.iter().map(|&p| u64::from(p)).sum();
    if sum != 100 {
        return Err(MoneyError::Malformed);
    }
    let total = i128::from(total_minor);
    let mut parts = Vec::with_capacity(percents.len());
    let mut allocated: i128 = 0;
    for (index, &percent) in percents.iter().enumerate() {
        let part = if index + 1 == percents.len() {
            total - allocated
        } else {
            total * i128::from(percent) / 100
        };
        allocated += part;
        // Every part lies in 0..=total, which came from an i64.
        parts.push(i64::try_from(part).map_err(|_| MoneyError::Overflow)?);
    }
    Ok(parts)
}

/// An amount with its currency, for messages and logs: displays as `"12500.00 USD"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Minor units (cents for USD).
    pub minor: i64,
    /// The currency the minor units are counted in.
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            format_amount(self.minor, self.currency),
            self.currency.code
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::str::FromStr;

    use proptest::prelude::*;
    use rust_decimal::RoundingStrategy;

    use super::*;

    fn c(code: &str) -> Currency {
        currency(code).expect("currency in table")
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("valid decimal")
    }

    #[test]
    fn table_codes_are_unique_three_uppercase_letters_with_iso_digits() {
        let mut seen = HashSet::new();
        for currency in currencies() {
            assert_eq!(currency.code().len(), 3, "{currency:?}");
            assert!(
                currency.code().bytes().all(|b| b.is_ascii_uppercase()),
                "{currency:?}"
            );
            assert!(currency.minor_digits() <= 3, "{currency:?}");
            assert!(seen.insert(currency.code()), "duplicate {currency:?}");
        }
    }

    #[test]
    fn required_currencies_have_their_iso_minor_digits() {
        let two = [
            "USD", "EUR", "GBP", "CHF", "CAD", "AUD", "NOK", "SEK", "DKK", "CNY", "INR", "KES", "TZS", "ETB",
            "SOS", "SSP", "SDG", "CDF", "HTG", "LBP", "SYP", "YER", "AFN", "NGN", "GHS", "MZN", "ZAR", "EGP",
            "MAD", "DZD", "LRD", "SLE",
        ];
        let zero = ["JPY", "UGX", "RWF", "BIF", "XAF", "XOF", "GNF", "DJF", "KMF"];
        let three = ["IQD", "JOD", "KWD", "BHD", "OMR", "TND", "LYD"];
        for (codes, digits) in [(&two[..], 2), (&zero[..], 0), (&three[..], 3)] {
            for code in codes {
                assert_eq!(currency(code).map(Currency::minor_digits), Some(digits), "{code}");
            }
        }
    }

    #[test]
    fn lookup_refuses_non_codes_and_lower_case() {
        for code in ["MLI", "CFA", "usd", "Usd", "", "US", "USDD", " USD", "XXX"] {
            assert_eq!(currency(code), None, "{code:?}");
        }
        assert_eq!(c("USD").code(), "USD");
    }

    #[test]
    fn parse_accepts_exact_decimals() {
        let usd = c("USD");
        assert_eq!(parse_amount("12500", usd), Ok(1_250_000));
        assert_eq!(parse_amount("12500.00", usd), Ok(1_250_000));
        assert_eq!(parse_amount("12500.5", usd), Ok(1_250_050));
        assert_eq!(parse_amount("-3.05", usd), Ok(-305));
        assert_eq!(parse_amount("007.50", usd), Ok(750));
        assert_eq!(parse_amount("0", usd), Ok(0));
        assert_eq!(parse_amount("-0.00", usd), Ok(0));
        assert_eq!(parse_amount("1200", c("JPY")), Ok(1200));
        assert_eq!(parse_amount("0.001", c("KWD")), Ok(1));
        assert_eq!(parse_amount("92233720368547758.07", usd), Ok(i64::MAX));
        assert_eq!(parse_amount("-92233720368547758.08", usd), Ok(i64::MIN));
        assert_eq!(
            parse_amount("0000000000000000000000000000000000000000001.25", usd),
            Ok(125)
        );
    }

    #[test]
    fn parse_refuses_malformed_text() {
        let usd = c("USD");
        assert_eq!(parse_amount("", usd), Err(MoneyError::Empty));
        for text in [
            "-", ".", "-.", ".5", "5.", "-5.", "+5", "1e3", "1E3", " 5", "5 ", "1 000", "1,000.00",
            "1.000,00", "--5", "5-", "1.2.3", "abc", "0x10", "١٢", "５", "NaN", "inf", "-.5",
        ] {
            assert_eq!(parse_amount(text, usd), Err(MoneyError::Malformed), "{text:?}");
        }
    }

    #[test]
    fn parse_refuses_extra_decimals_even_zeros() {
        assert_eq!(
            parse_amount("1.000", c("USD")),
            Err(MoneyError::TooManyDecimals { max: 2 })
        );
        assert_eq!(
            parse_amount("12.5", c("JPY")),
            Err(MoneyError::TooManyDecimals { max: 0 })
        );
        assert_eq!(
            parse_amount("12.0", c("JPY")),
            Err(MoneyError::TooManyDecimals { max: 0 })
        );
        assert_eq!(
            parse_amount("0.0001", c("KWD")),
            Err(MoneyError::TooManyDecimals { max: 3 })
        );
    }

    #[test]
    fn parse_reports_overflow() {
        let usd = c("USD");
        assert_eq!(
            parse_amount("92233720368547758.08", usd),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            parse_amount("-92233720368547758.09", usd),
            Err(MoneyError::Overflow)
        );
        assert_eq!(parse_amount(&"9".repeat(200), usd), Err(MoneyError::Overflow));
        assert_eq!(
            parse_amount("9223372036854775808", c("JPY")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn parse_positive_refuses_zero_and_negatives() {
        let usd = c("USD");
        assert_eq!(parse_positive_amount("0.01", usd), Ok(1));
        for text in ["0", "0.00", "-0", "-0.01", "-12500"] {
            assert_eq!(
                parse_positive_amount(text, usd),
                Err(MoneyError::NotPositive),
                "{text:?}"
            );
        }
        assert_eq!(parse_positive_amount("-x", usd), Err(MoneyError::Malformed));
        assert_eq!(parse_positive_amount("", usd), Err(MoneyError::Empty));
    }

    #[test]
    fn format_uses_exactly_the_minor_digits() {
        let usd = c("USD");
        assert_eq!(format_amount(1_250_000, usd), "12500.00");
        assert_eq!(format_amount(-305, usd), "-3.05");
        assert_eq!(format_amount(5, usd), "0.05");
        assert_eq!(format_amount(-5, usd), "-0.05");
        assert_eq!(format_amount(0, usd), "0.00");
        assert_eq!(format_amount(1200, c("JPY")), "1200");
        assert_eq!(format_amount(-1200, c("JPY")), "-1200");
        assert_eq!(format_amount(1, c("KWD")), "0.001");
        assert_eq!(format_amount(i64::MIN, usd), "-92233720368547758.08");
        assert_eq!(format_amount(i64::MAX, usd), "92233720368547758.07");
        assert_eq!(format_amount(i64::MIN, c("JPY")), "-9223372036854775808");
    }

    #[test]
    fn money_displays_amount_and_code() {
        let money = Money {
            minor: 1_250_000,
            currency: c("USD"),
        };
        assert_eq!(money.to_string(), "12500.00 USD");
        assert_eq!(
            Money {
                minor: -1,
                currency: c("BHD")
            }
            .to_string(),
            "-0.001 BHD"
        );
    }

    #[test]
    fn error_messages_read_as_validation_sentences() {
        assert_eq!(
            MoneyError::TooManyDecimals { max: 2 }.to_string(),
            "must have at most 2 decimal places"
        );
        assert_eq!(
            MoneyError::Malformed.to_string(),
            "must be a decimal number like 12500.00"
        );
        assert_eq!(MoneyError::NotPositive.to_string(), "must be greater than zero");
        assert_eq!(MoneyError::Overflow.to_string(), "is too large");
        assert_eq!(
            MoneyError::TooManyDecimals { max: 0 }.to_string(),
            "must be a whole number in this currency"
        );
        assert_eq!(MoneyError::Empty.to_string(), "must not be empty");
        assert_eq!(
            MoneyError::InvalidRate.to_string(),
            "must be an exchange rate greater than zero"
        );
    }

    #[test]
    fn convert_examples() {
        let (usd, eur, jpy, kwd) = (c("USD"), c("EUR"), c("JPY"), c("KWD"));
        assert_eq!(convert(10_000, eur, dec("1.085"), usd), Ok(10_850));
        assert_eq!(convert(5, usd, dec("0.5"), usd), Ok(2)); // 0.025 → 0.02
        assert_eq!(convert(15, usd, dec("0.5"), usd), Ok(8)); // 0.075 → 0.08
        assert_eq!(convert(-15, usd, dec("0.5"), usd), Ok(-8));
        assert_eq!(convert(-5, usd, dec("0.5"), usd), Ok(-2));
        assert_eq!(convert(100, usd, dec("150.25"), jpy), Ok(150)); // 150.25 → 150
        assert_eq!(convert(150, jpy, dec("0.0066"), usd), Ok(99)); // 0.99
        assert_eq!(convert(1, kwd, dec("3.25"), usd), Ok(0)); // 0.00325 → 0.00
        assert_eq!(convert(1000, usd, dec("0.307"), kwd), Ok(3070));
        assert_eq!(convert(0, usd, dec("1.1"), eur), Ok(0));
        assert_eq!(
            convert(12_345, usd, dec("1.000000000000000000000000000"), eur),
            Ok(12_345)
        );
    }

    #[test]
    fn convert_rounds_midpoints_half_even() {
        let (usd, jpy) = (c("USD"), c("JPY"));
        // (minor USD, rate, expected minor JPY): x.5 yen rounds to the even neighbour.
        let table = [
            (50, "1", 0),
            (150, "1", 2),
            (250, "1", 2),
            (350, "1", 4),
            (-250, "1", -2),
            (-350, "1", -4),
            (25, "10", 2),
            (35, "10", 4),
            (1, "50", 0),
            (3, "50", 2),
            (250_000_001, "0.000001", 3), // 2.50000001 is above the midpoint: up.
        ];
        for (minor, rate, expected) in table {
            assert_eq!(
                convert(minor, usd, dec(rate), jpy),
                Ok(expected),
                "{minor} × {rate}"
            );
        }
        // Far more digits than a Decimal product keeps: 1 USD at 2.5000…0001 is just above a midpoint.
        let rate = dec("2.500000000000000000000000001");
        assert_eq!(convert(100, usd, rate, jpy), Ok(3));
        assert_eq!(
            convert(
                92_233_720_368_547_758,
                usd,
                dec("0.00000000000000000000000001"),
                jpy
            ),
            Ok(0)
        );
    }

    #[test]
    fn convert_refuses_bad_rates_and_overflow() {
        let (usd, jpy, kwd) = (c("USD"), c("JPY"), c("KWD"));
        assert_eq!(
            convert(100, usd, Decimal::ZERO, jpy),
            Err(MoneyError::InvalidRate)
        );
        assert_eq!(convert(100, usd, dec("-1.2"), jpy), Err(MoneyError::InvalidRate));
        assert_eq!(convert(i64::MAX, usd, dec("2"), usd), Err(MoneyError::Overflow));
        assert_eq!(
            convert(i64::MAX, jpy, Decimal::MAX, kwd),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            convert(i64::MIN, jpy, Decimal::MAX, kwd),
            Err(MoneyError::Overflow)
        );
        assert_eq!(convert(i64::MIN, usd, dec("1"), usd), Ok(i64::MIN));
        assert_eq!(convert(i64::MAX, usd, dec("1"), usd), Ok(i64::MAX));
        assert_eq!(convert(i64::MIN, usd, dec("1"), kwd), Err(MoneyError::Overflow));
    }

    #[test]
    fn split_examples() {
        assert_eq!(split_by_percent(1_000, &[40, 40, 20]), Ok(vec![400, 400, 200]));
        assert_eq!(split_by_percent(1_001, &[33, 33, 34]), Ok(vec![330, 330, 341]));
        assert_eq!(split_by_percent(1, &[50, 50]), Ok(vec![0, 1]));
        assert_eq!(split_by_percent(0, &[100]), Ok(vec![0]));
        assert_eq!(split_by_percent(999, &[0, 100, 0]), Ok(vec![0, 999, 0]));
        assert_eq!(
            split_by_percent(i64::MAX, &[50, 50]),
            Ok(vec![i64::MAX / 2, i64::MAX - i64::MAX / 2])
        );
        assert_eq!(split_by_percent(-1, &[100]), Err(MoneyError::NotPositive));
        assert_eq!(split_by_percent(100, &[]), Err(MoneyError::Malformed));
        assert_eq!(split_by_percent(100, &[50, 49]), Err(MoneyError::Malformed));
        assert_eq!(
            split_by_percent(100, &[u32::MAX, 101]),
            Err(MoneyError::Malformed)
        );
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(CURRENCIES)
    }

    /// Two currencies (possibly the same) with equal minor digits.
    fn same_digit_pair() -> impl Strategy<Value = (Currency, Currency)> {
        any_currency().prop_flat_map(|from| {
            let peers: Vec<Currency> = CURRENCIES
                .iter()
                .copied()
                .filter(|c| c.minor_digits == from.minor_digits)
                .collect();
            (Just(from), proptest::sample::select(peers))
        })
    }

    /// Rates with an exact inverse. Inverses above 2 are left out on purpose: they magnify the first
    /// rounding error (up to half a minor unit) past one unit, e.g. 0.02 × 0.25 → 0.00 → 0.00 × 4.
    fn exact_rate() -> impl Strategy<Value = (Decimal, Decimal)> {
        proptest::sample::select(vec![
            ("0.5", "2"),
            ("2", "0.5"),
            ("1.25", "0.8"),
            ("0.8", "1.25"),
            ("1", "1"),
        ])
        .prop_map(|(rate, inverse)| (dec(rate), dec(inverse)))
    }

    const SANE: i64 = 1_000_000_000_000_000;

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in -SANE..=SANE, currency in any_currency()) {
            let text = format_amount(minor, currency);
            prop_assert_eq!(parse_amount(&text, currency), Ok(minor));
        }

        #[test]
        fn format_then_parse_round_trips_over_all_i64(minor in any::<i64>(), currency in any_currency()) {
            prop_assert_eq!(parse_amount(&format_amount(minor, currency), currency), Ok(minor));
        }

        #[test]
        fn parse_agrees_with_decimal(minor in -SANE..=SANE, currency in any_currency()) {
            let text = format_amount(minor, currency);
            let expected = Decimal::new(minor, u32::from(currency.minor_digits()));
            prop_assert_eq!(dec(&text), expected);
        }

        #[test]
        fn too_many_decimals_are_always_refused(
            int_part in 0u64..1_000_000_000,
            negative in any::<bool>(),
            extra in 1usize..6,
            digits in proptest::collection::vec(0u8..10, 9),
            currency in any_currency(),
        ) {
            let max = currency.minor_digits();
            let count = usize::from(max) + extra;
            let fraction: String = digits.iter().cycle().take(count).map(|d| char::from(b'0' + d)).collect();
            let sign = if negative { "-" } else { "" };
            let text = format!("{sign}{int_part}.{fraction}");
            prop_assert_eq!(parse_amount(&text, currency), Err(MoneyError::TooManyDecimals { max }));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}", currency in any_currency()) {
            let _ = parse_amount(&text, currency);
        }

        #[test]
        fn split_sums_to_total_with_fair_parts(
            total in 0i64..=i64::MAX,
            cuts in proptest::collection::vec(0u32..=100, 0..8),
        ) {
            // Turn sorted cut points into percentages that add up to 100.
            let mut cuts = cuts;
            cuts.sort_unstable();
            cuts.push(100);
            let mut previous = 0;
            let percents: Vec<u32> = cuts.iter().map(|&cut| { let p = cut - previous; previous = cut; p }).collect();
            let parts = split_by_percent(total, &percents).expect("percentages add up to 100");
            prop_assert_eq!(parts.len(), percents.len());
            prop_assert_eq!(parts.iter().map(|&p| i128::from(p)).sum::<i128>(), i128::from(total));
            prop_assert!(parts.iter().all(|&p| p >= 0));
            for (part, percent) in parts.iter().zip(&percents).take(parts.len() - 1) {
                // exact share = total × p / 100; the part is its floor, so 0 ≤ 100·share − 100·part < 100.
                let gap = i128::from(total) * i128::from(*percent) - i128::from(*part) * 100;
                prop_assert!((0..100).contains(&gap), "part {} for {}% of {}", part, percent, total);
            }
        }

        #[test]
        fn split_refuses_percentages_not_adding_to_100(
            total in 0i64..1_000_000,
            percents in proptest::collection::vec(0u32..200, 0..6),
        ) {
            prop_assume!(percents.iter().map(|&p| u64::from(p)).sum::<u64>() != 100);
            prop_assert_eq!(split_by_percent(total, &percents), Err(MoneyError::Malformed));
        }

        #[test]
        fn convert_there_and_back_is_within_one_minor_unit(
            minor in -SANE..=SANE,
            (rate, inverse) in exact_rate(),
            (from, to) in same_digit_pair(),
        ) {
            let there = convert(minor, from, rate, to).expect("no overflow at these sizes");
            let back = convert(there, to, inverse, from).expect("no overflow at these sizes");
            prop_assert!((back - minor).abs() <= 1, "{} → {} → {}", minor, there, back);
        }

        #[test]
        fn convert_matches_decimal_half_even_when_decimal_is_exact(
            minor in -1_000_000_000_000i64..=1_000_000_000_000,
            rate_mantissa in 1i64..=1_000_000_000,
            rate_scale in 0u32..=9,
            from in any_currency(),
            to in any_currency(),
        ) {
            // At most 13 + 10 significant digits: the Decimal product is exact, so it is the oracle.
            let rate = Decimal::new(rate_mantissa, rate_scale);
            let amount = Decimal::new(minor, u32::from(from.minor_digits()));
            let expected = (amount * rate)
                .round_dp_with_strategy(u32::from(to.minor_digits()), RoundingStrategy::MidpointNearestEven);
            // The oracle in minor units of `to`; rounding left its scale at or below to's digits.
            let to_digits = u32::from(to.minor_digits());
            let expected_minor = expected.mantissa() * 10i128.pow(to_digits - expected.scale());
            let expected = i64::try_from(expected_minor).map_err(|_| MoneyError::Overflow);
            prop_assert_eq!(convert(minor, from, rate, to), expected);
        }

        #[test]
        fn convert_matches_an_i128_oracle_for_long_rates(
            minor in -(1i64 << 50)..=(1i64 << 50),
            rate_mantissa in 1u64..=u64::MAX >> 1,
            rate_scale in 0u32..=28,
            from in any_currency(),
            to in any_currency(),
        ) {
            // Up to 19 significant rate digits, where Decimal products may already be rounded;
            // |minor × mantissa| < 2^113, so plain i128 arithmetic is exact.
            let rate = Decimal::from_i128_with_scale(i128::from(rate_mantissa), rate_scale);
            let product = i128::from(minor) * i128::from(rate_mantissa);
            let shift = i64::from(from.minor_digits()) + i64::from(rate_scale) - i64::from(to.minor_digits());
            let exact = if shift <= 0 {
                product.checked_mul(10i128.pow(u32::try_from(-shift).expect("small")))
            } else {
                let divisor = 10i128.pow(u32::try_from(shift).expect("small"));
                let (quotient, remainder) = (product / divisor, product % divisor);
                let twice = remainder.abs() * 2;
                let away = twice > divisor || (twice == divisor && quotient % 2 != 0);
                Some(if away { quotient + product.signum() } else { quotient })
            };
            let expected = exact.and_then(|v| i64::try_from(v).ok()).ok_or(MoneyError::Overflow);
            prop_assert_eq!(convert(minor, from, rate, to), expected);
        }

        #[test]
        fn convert_never_panics(minor in any::<i64>(), mantissa in any::<i64>(), scale in 0u32..=28,
                                from in any_currency(), to in any_currency()) {
            let result = convert(minor, from, Decimal::new(mantissa, scale), to);
            if mantissa <= 0 {
                prop_assert_eq!(result, Err(MoneyError::InvalidRate));
            }
        }
    }
}
