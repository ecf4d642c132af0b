//! The training/validation split.

/// Keras' `validation_split`: the first ⌊(1 − f)·G⌋ groups train, the rest validate.
pub fn split_sizes(g: usize, validation_fraction: f64) -> (usize, usize) {
    let n_train = ((1.0 - validation_fraction) * g as f64).floor() as usize;
    let n_train = n_train.min(g);
    (n_train, g - n_train)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_keras() {
        assert_eq!(split_sizes(32, 0.05), (30, 2));
        assert_eq!(split_sizes(1024, 0.05), (972, 52));
        assert_eq!(split_sizes(100, 0.0), (100, 0));
        assert_eq!(split_sizes(20, 0.05), (19, 1));
    }
}
