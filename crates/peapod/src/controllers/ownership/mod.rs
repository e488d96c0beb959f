//! Controller references, as kube's ControllerRefManager keeps them: [`claims`] decides, for
//! one controller and the objects its selector may cover, which it owns, adopts or releases;
//! [`adoption`] sends the patches through the API and returns what the controller manages;
//! [`watches`] maps an owned object's change to the controllers it concerns; [`selecting`]
//! reads each controller kind's selector.

pub mod adoption;
pub mod claims;
pub mod selecting;
pub mod watches;

pub use adoption::{claim_all, AdoptionError};
pub use claims::{controlled_by_kind, controller_of, controller_ref};
pub use selecting::{selector_of, valid_selector, Selecting};
pub use watches::{controller_ref_of, controllers_to_sync};
