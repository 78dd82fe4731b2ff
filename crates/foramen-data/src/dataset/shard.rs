//! Array-job shards of a list: `I/N` takes every N-th entry starting at I, in the list's
//! own order, so N jobs of a scheduler (Slurm's `$SLURM_ARRAY_TASK_ID`, a Kubernetes
//! Indexed Job's `$JOB_COMPLETION_INDEX`) cover the list once between them.

/// Parses `I/N` (0 <= I < N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected I/N, e.g. 0/8"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?}: {v:?} is not a whole number"))
    };
    let (i, n) = (num(i)?, num(n)?);
    if n == 0 || i >= n {
        return Err(format!("{s:?}: needs 0 <= I < N"));
    }
    Ok((i, n))
}

/// The entries of shard `(i, n)`, in order.
pub fn select_shard<T>(items: Vec<T>, (i, n): (usize, usize)) -> Vec<T> {
    items
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % n == i)
        .map(|(_, x)| x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_list_once_in_order() {
        let all: Vec<u32> = (0..11).collect();
        let mut seen = vec![];
        for i in 0..4 {
            let part = select_shard(all.clone(), parse_shard(&format!("{i}/4")).expect("ok"));
            assert!(part.windows(2).all(|w| w[0] < w[1]));
            seen.extend(part);
        }
        seen.sort();
        assert_eq!(seen, all);
        for bad in ["4/4", "1", "a/2", "0/0"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
