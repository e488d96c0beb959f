//! kubectl-shaped human output for peapod: pure functions from k8s-openapi objects to the text
//! `kubectl get`, `kubectl get events` and `kubectl describe pod` print.
//!
//! The reference is Kubernetes itself: `pkg/printers/internalversion/printers.go` (printPod,
//! printEvent), `k8s.io/apimachinery/pkg/util/duration`, kubectl's `describe.go` and the
//! `text/tabwriter` settings kubectl uses.

mod describe;
mod duration;
mod events;
mod pods;
mod table;
mod tabwriter;

pub use describe::{describe_layout, describe_pod, describe_pod_in, events_section};
pub use duration::{go_duration, human_duration, short_human_duration, since};
pub use events::{event_row, event_table, event_table_header};
pub use pods::{pod_row, pod_status, pod_table, pod_table_header};
pub use table::{align, object_name, table, TableStream};
