//! Enums stored by name: `stored_name!(Type, "field")` gives a type that has `ALL` (every value)
//! and `as_str` (its name) `Display`, `FromStr` (an unknown name is a user error naming `field`
//! and the choices), and rusqlite's `ToSql` / `FromSql`, so SQL parameters and columns take the
//! enum itself.

/// See the module doc.
macro_rules! stored_name {
    ($type:ty, $field:literal) => {
        impl $type {
            /// Every name, for choices on forms and the command line.
            pub fn names() -> Vec<&'static str> {
                <$type>::ALL.iter().map(|value| value.as_str()).collect()
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $type {
            type Err = $crate::error::Error;

            fn from_str(s: &str) -> Result<$type, $crate::error::Error> {
                <$type>::ALL.into_iter().find(|value| value.as_str() == s.trim()).ok_or_else(|| {
                    $crate::error::Error::invalid($field, format!("Choose one of: {}.", <$type>::names().join(", ")))
                })
            }
        }

        impl rusqlite::types::ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $type {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<$type> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: $crate::error::Error| rusqlite::types::FromSqlError::Other(e.to_string().into()))
            }
        }
    };
}

pub(crate) use stored_name;
