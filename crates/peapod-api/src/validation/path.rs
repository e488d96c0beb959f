//! Field paths rendered the way Kubernetes' `field.Path` prints them
//! (`spec.containers[0].resources.limits[cpu]`).

use std::fmt;

/// A field path such as `spec.containers[0].name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A root path with one segment, e.g. `spec`.
    pub fn new(root: &str) -> Self {
        Self(root.to_string())
    }

    /// `self.name`
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            return Self::new(name);
        }
        Self(format!("{}.{name}", self.0))
    }

    /// `self[index]`
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// `self[key]`, as Kubernetes prints map keys (unquoted).
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_kubernetes() {
        let p = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("resources")
            .child("limits")
            .key("cpu");
        assert_eq!(p.to_string(), "spec.containers[0].resources.limits[cpu]");
        assert_eq!(FieldPath::new("").child("spec").as_str(), "spec");
    }
}
