//! Data exchange in the field's formats (issue 16): the IATI 2.03 activity file of a pool, HXL-tagged CSV
//! exports (streamed, safe to open in a spreadsheet), the reading of real-world CSV files for imports
//! (encodings, delimiters, HXL attributes) and the pool report. See docs/EXCHANGE.md.

pub mod csv_safe;
pub mod hxl;
pub mod iati;
pub mod repo;
pub mod report;
pub mod routes;
pub mod service;
