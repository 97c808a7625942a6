//! "Did you mean" suggestions for misspelt field names and values.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
///
/// Case, `-` and `_` are ignored first (`allow_from` → `allowFrom`), then Jaro-Winkler
/// similarity picks the best candidate above 0.8.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let normalise = |s: &str| {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let wanted = normalise(word);
    if let Some(exact) = candidates.iter().find(|c| normalise(c) == wanted) {
        return Some(exact);
    }
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&wanted, &normalise(c)), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn suggests_close_names_and_nothing_for_unrelated_ones() {
        let fields = ["image", "command", "replicas", "allowFrom", "memoryMB"];
        assert_eq!(suggest("imagee", &fields), Some("image"));
        assert_eq!(suggest("allow_from", &fields), Some("allowFrom"));
        assert_eq!(suggest("memoryMb", &fields), Some("memoryMB"));
        assert_eq!(suggest("replica", &fields), Some("replicas"));
        assert_eq!(suggest("zzz", &fields), None);
    }
}
