//! "Did you mean" suggestions for misspelled names (keys, stage kinds, stage names, variables).

/// The candidate closest to `name`, if one is close enough to be a likely typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&name.to_lowercase(), &candidate.to_lowercase());
        let close_edit = strsim::levenshtein(name, candidate) <= 2.max(name.len() / 4);
        if (score >= 0.8 || close_edit) && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn finds_a_one_letter_typo() {
        assert_eq!(nearest("lrr", ["lr", "momentum", "betas"]), Some("lr"));
        assert_eq!(nearest("trian", ["train", "plot"]), Some("train"));
    }

    #[test]
    fn suggests_nothing_for_an_unrelated_name() {
        assert_eq!(nearest("zebra", ["lr", "momentum"]), None);
    }

    #[test]
    fn prefers_the_closest_candidate() {
        assert_eq!(
            nearest("train_dep", ["train_deep", "train_shallow"]),
            Some("train_deep")
        );
    }
}
