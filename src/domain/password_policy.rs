//! Rules for a new password: 12–128 characters, not the username, not one of the 30,000 most common passwords
//! (compiled in from zxcvbn's frequency list), and hard enough to guess by zxcvbn's estimate (patterns such
//! as repeats, sequences, keyboard walks, dates and the user's own names count for little).

use std::collections::HashSet;
use std::sync::LazyLock;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;
/// Lowest zxcvbn score accepted: 3 means about 10^10 guesses are needed, which argon2id at the production cost
/// makes an offline attack on one stolen hash take years; online guessing is throttled on top.
pub const MIN_STRENGTH_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// How many passwords the compiled-in list holds.
pub fn common_password_count() -> usize {
    COMMON.len()
}

/// Every reason `password` is unacceptable for `username` (empty when it is fine).
pub fn password_problems(password: &str, username: &str) -> Vec<String> {
    password_problems_for(password, username, &[])
}

/// Like [`password_problems`], with more of what the user is known by (display name, organisation name and
/// code, email): a password built from them counts as easy to guess.
pub fn password_problems_for(password: &str, username: &str, other_user_inputs: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let length = password.chars().count();
    if length < MIN_LENGTH {
        problems.push(format!("must be at least {MIN_LENGTH} characters"));
    }
    if length > MAX_LENGTH {
        problems.push(format!("must be at most {MAX_LENGTH} characters"));
    }
    let lowered = password.to_lowercase();
    if !username.is_empty() && lowered.contains(&username.to_lowercase()) {
        problems.push("must not contain the username".to_owned());
    }
    if COMMON.contains(lowered.as_str()) {
        problems.push("is one of the most common passwords; choose another".to_owned());
    }
    if length <= MAX_LENGTH {
        if let Some(weakness) = guessability_problem(password, username, other_user_inputs) {
            problems.push(weakness);
        }
    }
    problems
}

/// zxcvbn's verdict, with its own warning and suggestions, when the estimate is below the minimum.
fn guessability_problem(password: &str, username: &str, other_user_inputs: &[&str]) -> Option<String> {
    let inputs = user_input_words(username, other_user_inputs);
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &input_refs);
    if estimate.score() >= MIN_STRENGTH_SCORE {
        return None;
    }
    let mut message = format!(
        "is too easy to guess (strength {} of 4, at least {} needed)",
        estimate.score(),
        MIN_STRENGTH_SCORE
    );
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            message.push_str(&format!(": {warning}"));
        }
        let suggestions: Vec<String> = feedback.suggestions().iter().map(ToString::to_string).collect();
        if !suggestions.is_empty() {
            message.push_str(&format!(" — {}", suggestions.join(" ")));
        }
    }
    Some(message)
}

/// Each input whole and split into its words, so "Amina Diallo" also matches "diallo" inside a password.
fn user_input_words(username: &str, others: &[&str]) -> Vec<String> {
    let mut words = Vec::new();
    for input in std::iter::once(username).chain(others.iter().copied()) {
        let input = input.trim();
        if input.is_empty() {
            continue;
        }
        words.push(input.to_owned());
        words.extend(
            input
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 3 && *w != input)
                .map(str::to_owned),
        );
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_large_enough() {
        assert!(common_password_count() >= 10_000);
    }

    #[test]
    fn rules_apply() {
        assert!(password_problems("correct horse battery staple", "amina").is_empty());
        assert!(password_problems("short", "amina")[0].contains("at least 12"));
        assert!(password_problems("amina-is-great-2026", "amina")[0].contains("username"));
        assert!(password_problems(&"x".repeat(129), "amina")[0].contains("at most"));
        // A common password long enough to pass the length rule.
        assert!(
            password_problems("1qaz2wsx3edc", "amina")
                .iter()
                .any(|p| p.contains("common"))
        );
        assert!(
            password_problems("1QAZ2WSX3EDC", "amina")
                .iter()
                .any(|p| p.contains("common"))
        );
    }

    #[test]
    fn long_but_guessable_passwords_are_refused_with_zxcvbn_feedback() {
        for weak in [
            "aaaaaaaaaaaa",
            "            ",
            "123456789012",
            "abcdefghijklmnop",
            "qwertyuiopasdf",
        ] {
            let problems = password_problems(weak, "amina");
            assert!(
                problems.iter().any(|p| p.starts_with("is too easy to guess")),
                "{weak:?}: {problems:?}"
            );
        }
        let repeats = password_problems("aaaaaaaaaaaa", "amina");
        assert!(repeats.iter().any(|p| p.contains("Repeats")), "{repeats:?}");
    }

    #[test]
    fn the_users_own_names_count_for_little() {
        assert!(password_problems("Diallo-Diallo-2026", "amina").is_empty());
        let problems = password_problems_for("Diallo-Diallo-2026", "amina", &["Amina Diallo", "UNICEF"]);
        assert!(
            problems.iter().any(|p| p.starts_with("is too easy to guess")),
            "{problems:?}"
        );
    }

    #[test]
    fn passphrases_pass() {
        for good in [
            "correct horse battery staple",
            "keeper-of-the-Quick-Impact-pool",
            "field-pass-Quick-Impact-2026",
            "a-new-long-passphrase-2026",
            "xylonia-demo-2026",
            "a-strong-bootstrap-passphrase",
        ] {
            assert_eq!(password_problems(good, "amina"), Vec::<String>::new(), "{good}");
        }
    }
}
