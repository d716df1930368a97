//! The `write.tables` allow-list checked against the live schema, at
//! start-up and on each schema reload.

use super::policy::Policy;
use super::schema::Catalog;
use super::settings::WriteSettings;
use crate::config::error::ConfigError;

/// Checks the allow-list against the live schema; the error names the
/// configuration key and the missing table or column.
pub fn check(catalog: &Catalog, settings: &WriteSettings) -> Result<(), ConfigError> {
    for (name, table_settings) in &settings.tables {
        let key = format!("write.tables.{name}");
        let Some(table) = catalog.tables.get(name) else {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "table `{name}` does not exist in schema `{}`",
                    settings.schema
                ),
            ));
        };
        if !table.id_is_key {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "table `{name}` needs an `id` column with a primary key or unique index (PowerSync's row id)"
                ),
            ));
        }
        for column in table_settings.columns.iter().flatten() {
            match table.column(column) {
                None => {
                    return Err(ConfigError::invalid(
                        format!("{key}.columns"),
                        format!("column `{name}.{column}` does not exist"),
                    ));
                }
                Some(c) if !c.writable => {
                    return Err(ConfigError::invalid(
                        format!("{key}.columns"),
                        format!("column `{name}.{column}` is generated and cannot be written"),
                    ));
                }
                Some(_) => {}
            }
        }
        Policy::resolve(table, table_settings)?;
    }
    Ok(())
}
