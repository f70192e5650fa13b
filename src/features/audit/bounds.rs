//! Length bounds on what reaches the audit trail. The trail cannot be pruned, so a field an outsider controls
//! (a username typed at sign-in, a reason, a comment) is cut at a fixed length, on a character boundary, with a
//! visible marker — here, once, for every event `append` writes.

use serde_json::Value;

/// Longest identifier-like field (usernames, ids, hats, actions, addresses), in characters.
pub const IDENTIFIER_MAX_CHARS: usize = 256;
/// Longest free-text field (reasons, and every string inside `before`/`after`), in characters.
pub const TEXT_MAX_CHARS: usize = 2_000;
/// Ends a cut string, so a reader sees that text is missing.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// `text` if it has at most `max` characters, else its first characters and the marker, `max` characters in
/// all (never splitting a UTF-8 sequence).
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let marker_chars = TRUNCATION_MARKER.chars().count();
    let keep = max.saturating_sub(marker_chars);
    let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let mut out = String::with_capacity(end + TRUNCATION_MARKER.len());
    out.push_str(&text[..end]);
    if max >= marker_chars {
        out.push_str(TRUNCATION_MARKER);
    }
    out
}

/// [`truncate_chars`] on an optional field.
pub fn bound_opt(text: Option<String>, max: usize) -> Option<String> {
    text.map(|t| bound(t, max))
}

/// [`truncate_chars`], without copying a string that fits.
pub fn bound(text: String, max: usize) -> String {
    // A string of at most `max` bytes has at most `max` characters: the cheap check first.
    if text.len() <= max {
        text
    } else {
        truncate_chars(&text, max)
    }
}

/// Cuts every string inside a JSON value (object keys included) to `max` characters.
pub fn bound_json(value: &mut Value, max: usize) {
    match value {
        Value::String(s) if s.len() > max => *s = truncate_chars(s, max),
        Value::Array(items) => items.iter_mut().for_each(|v| bound_json(v, max)),
        Value::Object(map) => {
            if map.keys().any(|k| k.len() > max) {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    bound_json(&mut v, max);
                    map.insert(bound(k, max), v);
                }
            } else {
                map.values_mut().for_each(|v| bound_json(v, max));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_text_is_kept_as_is() {
        assert_eq!(truncate_chars("finance", 256), "finance");
        assert_eq!(bound("x".repeat(256), 256), "x".repeat(256));
        assert_eq!(bound_opt(None, 10), None);
    }

    #[test]
    fn long_text_is_cut_to_the_bound_with_a_marker() {
        let cut = bound("a".repeat(100_000), IDENTIFIER_MAX_CHARS);
        assert_eq!(cut.chars().count(), IDENTIFIER_MAX_CHARS);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert!(cut.starts_with("aaaa"));
    }

    #[test]
    fn cutting_never_splits_a_character() {
        // Multi-byte characters: the byte length exceeds the bound long before the character count does.
        let text = "é🙂".repeat(300);
        let cut = truncate_chars(&text, 257);
        assert_eq!(cut.chars().count(), 257);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        // 150 characters of 2 and 4 bytes fit 256 characters unchanged.
        let fits = "é🙂".repeat(75);
        assert_eq!(bound(fits.clone(), 256), fits);
    }

    #[test]
    fn a_bound_shorter_than_the_marker_still_holds() {
        assert_eq!(truncate_chars("abcdefghijklmnopqrstuvwxyz", 5).chars().count(), 0);
    }

    #[test]
    fn strings_inside_json_are_cut_at_every_depth() {
        let long = "z".repeat(5_000);
        let mut v = json!({"reason": long, "list": [{"comment": long}, 3, true, null], "short": "ok", long.clone(): 1});
        bound_json(&mut v, TEXT_MAX_CHARS);
        let text = v.to_string();
        assert!(text.len() < 4 * TEXT_MAX_CHARS + 200, "{}", text.len());
        assert_eq!(v["short"], "ok");
        assert_eq!(v["list"][1], 3);
        assert_eq!(
            v["reason"].as_str().map(|s| s.chars().count()),
            Some(TEXT_MAX_CHARS)
        );
        assert_eq!(
            v["list"][0]["comment"].as_str().map(|s| s.chars().count()),
            Some(TEXT_MAX_CHARS)
        );
    }
}
