//! CQL text shared by the operator (DDL, grants) and the sink (its INSERT).

/// A quoted CQL identifier: case and any character kept, so a name is never read as
/// another (a team's `"Foo"` table is not `foo`) and never breaks a statement.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
