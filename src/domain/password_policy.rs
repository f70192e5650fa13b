//! Rules for a new password: 12–128 characters, not the username, not one of the 30,000 most common passwords
//! (compiled in from zxcvbn's frequency list).

use std::collections::HashSet;
use std::sync::LazyLock;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

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
    problems
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
        assert_eq!(password_problems("short", "amina").len(), 1);
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
}
