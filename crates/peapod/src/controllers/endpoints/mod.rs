//! The endpoints controller, as kube-controller-manager's (pkg/controller/endpoint): the
//! legacy core/v1 Endpoints of every Service with a selector, named after it and labelled
//! with its labels: the selected pods' addresses (ready or not) per resolved port, repacked
//! as kube's `RepackSubsets` and cut at 1000 addresses ([`subsets`]), with the last-change
//! trigger time; a deleted Service's Endpoints deleted ([`controller`]).

pub mod controller;
pub mod subsets;
