//! Which classes an evaluation leaves out (as Cityscapes' void): the command line's
//! list, else the union of dataset.toml's and the model's `ignore_classes`.

/// One flag per class in `names`: `cli` if given (empty: none), else `from_data` and
/// `from_model` together. A name that is not a class is an error naming where it came
/// from, and so is ignoring every class.
pub fn ignored_flags(
    names: &[String],
    cli: Option<&[String]>,
    from_data: &[String],
    from_model: &[String],
) -> Result<Vec<bool>, String> {
    let wanted: Vec<(&String, &str)> = match cli {
        Some(list) => list.iter().map(|n| (n, "--ignore-classes")).collect(),
        None => from_data
            .iter()
            .map(|n| (n, "dataset.toml"))
            .chain(from_model.iter().map(|n| (n, "the model's contract")))
            .collect(),
    };
    let mut flags = vec![false; names.len()];
    for (name, source) in wanted {
        let Some(k) = names.iter().position(|n| n == name) else {
            return Err(format!(
                "ignored class `{name}` (from {source}) is not one of the classes {names:?}"
            ));
        };
        flags[k] = true;
    }
    if flags.iter().all(|&f| f) {
        return Err("every class is ignored: nothing left to score".into());
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_else_data_and_model_together() {
        let names: Vec<String> = ["void", "a", "b"].map(String::from).to_vec();
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ignored_flags(&names, None, &v(&["void"]), &v(&["b"])),
            Ok(vec![true, false, true])
        );
        assert_eq!(
            ignored_flags(&names, Some(&[]), &v(&["void"]), &[]),
            Ok(vec![false; 3])
        );
        let e = ignored_flags(&names, None, &[], &v(&["x"])).expect_err("unknown");
        assert!(e.contains("`x` (from the model's contract)"), "{e}");
        assert!(ignored_flags(&names, Some(&v(&["void", "a", "b"])), &[], &[]).is_err());
    }
}
