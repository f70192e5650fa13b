//! Human labels for the field names and coded values of a proposal's nested parts (screening, implementing
//! partner, beneficiaries, waiver), so the brief reads as sentences, not as JSON keys.

/// The question or label a field name stands for; an unknown name is shown with spaces, first letter capital.
pub fn field(name: &str) -> String {
    let known = match name {
        "civilian_actor_present" => "Could a civilian actor do this?",
        "civilian_actor_details" => "Which civilian actor, and why not them",
        "unique_military_capability" => "Capability only the military has",
        "time_limited_with_handover" => "Time-limited, with a handover",
        "assistance_type" => "Type of assistance",
        "humanitarian_access_risk" => "Risk to humanitarian access",
        "kind" => "Kind",
        "name" => "Name",
        "women" => "Women",
        "men" => "Men",
        "girls" => "Girls",
        "boys" => "Boys",
        "reason" => "Reason",
        "local_authority" => "Local authority",
        "maintenance" => "Maintenance",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// A coded value (`indirect`, `local_authority`) as words; free text (a partner's name) is shown as written.
pub fn value(code: &str) -> String {
    let known = match code {
        "direct" => "Direct (troops deliver it)",
        "indirect" => "Indirect (troops support, civilians deliver)",
        "local_authority" => "Local authority",
        "ngo" => "Non-governmental organisation",
        "community_organisation" => "Community organisation",
        "unit_itself" => "The unit itself",
        other => other,
    };
    known.to_owned()
}

/// A count with its noun in the right number: "1 proposal", "3 proposals".
pub fn count(n: i64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_read_as_words_and_unknown_ones_are_tidied() {
        assert_eq!(field("assistance_type"), "Type of assistance");
        assert_eq!(field("some_new_field"), "Some new field");
        assert_eq!(value("local_authority"), "Local authority");
        assert_eq!(
            value("Kalma_water board"),
            "Kalma_water board",
            "free text unchanged"
        );
    }

    #[test]
    fn a_count_of_one_takes_the_singular() {
        assert_eq!(count(1, "proposal", "proposals"), "1 proposal");
        assert_eq!(count(0, "proposal", "proposals"), "0 proposals");
        assert_eq!(count(3, "proposal", "proposals"), "3 proposals");
    }
}
