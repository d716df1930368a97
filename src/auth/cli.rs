//! `uplink keys …` and `uplink token …`.
