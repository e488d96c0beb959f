//! The pod-template-hash: kube's `controller.ComputeHash`, an fnv-1a 32 hash of the template
//! (here its canonical JSON, which k8s-openapi serializes deterministically) and of the
//! collision count, written with `rand.SafeEncodeString`'s alphabet.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// `apps.DefaultDeploymentUniqueLabelKey`: the label that tells a Deployment's ReplicaSets apart.
pub const DEFAULT_LABEL_KEY: &str = "pod-template-hash";

/// `rand.SafeEncodeString`'s alphabet: no vowels (no words) and no look-alike characters.
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV_OFFSET_BASIS: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// `controller.ComputeHash`: the same template and collision count give the same hash in
/// every run and version of peapod; a collision count changes it, to get past a name taken
/// by a ReplicaSet with another template.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serializing plain k8s-openapi structs into a Vec cannot fail.
    let canonical = serde_json::to_vec(template).unwrap_or_default();
    let mut hash = fnv1a_32(FNV_OFFSET_BASIS, &canonical);
    if let Some(count) = collision_count {
        // As kube: the count's 4 little-endian bytes in an 8-byte buffer.
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&count.to_le_bytes());
        hash = fnv1a_32(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

fn fnv1a_32(mut hash: u32, bytes: &[u8]) -> u32 {
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// `rand.SafeEncodeString`: each character mapped into the safe alphabet.
fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| {
            let index = u32::from(c) as usize % SAFE_ALPHANUMS.len();
            char::from(SAFE_ALPHANUMS[index])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a_32(FNV_OFFSET_BASIS, b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(FNV_OFFSET_BASIS, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(FNV_OFFSET_BASIS, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_maps_digits_into_the_alphabet() {
        // '0' is 48: 48 % 27 = 21 -> '4'; '9' is 57: 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("09"), "4f");
        assert_eq!(safe_encode("1234567890"), "56789bcdf4");
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_template_and_collision_count() {
        let nginx = template("nginx");
        let hash = compute_hash(&nginx, None);
        // Pinned: a change here renames every ReplicaSet peapod ever created.
        assert_eq!(
            (hash.as_str(), compute_hash(&nginx, Some(1)).as_str()),
            ("5776d5bb59", "5f9995b98")
        );
        assert!(hash
            .bytes()
            .all(|b| SAFE_ALPHANUMS.contains(&b) && !b"aeiou".contains(&b)));
        assert_ne!(hash, compute_hash(&template("httpd"), None));
        let collided = compute_hash(&nginx, Some(1));
        assert_ne!(collided, hash);
        assert_ne!(collided, compute_hash(&nginx, Some(2)));
        assert_ne!(compute_hash(&nginx, Some(0)), hash);
    }
}
