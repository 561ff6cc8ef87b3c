//! Helpers shared by the control-plane tests.

#![allow(dead_code)]

pub mod api;
pub mod db;
pub mod smtp;
