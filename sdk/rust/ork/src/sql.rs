//! SQL that the ork host runs on the task's behalf
//! ([`Context::sql`](crate::Context::sql)).
//!
//! The host holds the database connections ork.yaml defines
//! (`connections:`) and runs statements on those granted to the task's
//! executor (`sandbox.connections`), with a timeout and a cap on the
//! result's size. Placeholders are the database's own: `?` for SQLite,
//! `$1, $2, …` for PostgreSQL.
//!
//! ```no_run
//! use ork::serde_json::json;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct User {
//!     id: i64,
//!     name: String,
//! }
//!
//! # fn demo(ctx: &ork::Context) -> ork::Result<()> {
//! let db = ctx.sql("warehouse");
//! let inserted = db.execute("INSERT INTO users (id, name) VALUES (?, ?)", &[json!(1), json!("Ada")])?;
//! for row in &db.query("SELECT id, name FROM users WHERE id > ?", &[json!(0)])? {
//!     ctx.info(format!("{} is {}", row["id"], row["name"]));
//! }
//! let users: Vec<User> = db.query("SELECT id, name FROM users", &[])?.rows_as()?;
//! # Ok(()) }
//! ```
//!
//! Parameters and values are JSON: numbers, strings, booleans and `null`
//! bind as themselves; [`blob`] makes a BLOB/bytea parameter; other arrays
//! and objects bind as their JSON text. Values read back are JSON too: binary
//! values that are not UTF-8 come as `{"base64": "…"}` (see [`as_blob`]),
//! dates and times as ISO 8601 strings, PostgreSQL numerics as strings (no
//! precision lost), json columns as their JSON text.

use std::ops::Index;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::abi::{self, op};
use crate::{base64, Error, HostError, Result};

/// A database connection of ork.yaml, as granted to the task's executor; get
/// it with [`Context::sql`](crate::Context::sql). Nothing is checked until a
/// statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlConnection {
    name: String,
}

impl SqlConnection {
    pub(crate) fn new(name: &str) -> Self {
        SqlConnection {
            name: name.to_string(),
        }
    }

    /// The connection's name in ork.yaml.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a statement that returns no rows (INSERT, UPDATE, DELETE, CREATE,
    /// …) with one parameter per placeholder; returns the number of rows
    /// affected.
    ///
    /// Fails with a [`HostError`] carrying the host's message (a connection
    /// not granted) or the database's (`sqlite: no such table: t`).
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let resp = self.run(op::SQL_EXECUTE, sql, params)?;
        match resp["rows_affected"].as_i64() {
            Some(n) => Ok(n.max(0) as u64),
            None => Err(unexpected(op::SQL_EXECUTE, &resp)),
        }
    }

    /// Runs a statement that returns rows. The host caps how many rows and
    /// bytes a result may hold: select what you need, or aggregate in SQL.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult> {
        let resp = self.run(op::SQL_QUERY, sql, params)?;
        let mut result: QueryResult =
            serde_json::from_value(resp.clone()).map_err(|_| unexpected(op::SQL_QUERY, &resp))?;
        let width = result.columns.len();
        if result.rows.iter().any(|r| r.len() != width) {
            return Err(unexpected(op::SQL_QUERY, &resp));
        }
        result.rows.shrink_to_fit();
        Ok(result)
    }

    fn run(&self, op: &str, sql: &str, params: &[Value]) -> Result<Value> {
        let mut req = json!({ "connection": self.name, "sql": sql });
        if !params.is_empty() {
            req["params"] = Value::Array(params.to_vec());
        }
        abi::call(op, &req)
    }
}

fn unexpected(op: &str, resp: &Value) -> Error {
    let mut text = resp.to_string();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Error::new(HostError::new(
        op,
        format!("unexpected response from the host: {}", text),
    ))
}

/// A BLOB (bytea) parameter: `{"base64": "…"}`, which the host binds as
/// bytes.
pub fn blob(bytes: &[u8]) -> Value {
    json!({ "base64": base64::encode(bytes) })
}

/// The bytes of a value read from a BLOB/bytea column: `{"base64": "…"}`
/// decoded, or a string's UTF-8 bytes (binary values that are valid UTF-8
/// come as strings). `None` for other values.
pub fn as_blob(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.clone().into_bytes()),
        Value::Object(m) if m.len() == 1 => match m.get("base64") {
            Some(Value::String(b)) => base64::decode(b).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The rows a query returned: the column names, and one `Vec` of values per
/// row, in column order.
///
/// Iterate over `&result` (or [`iter`](QueryResult::iter)) for [`Row`]s,
/// which index by column name; [`rows_as`](QueryResult::rows_as)
/// deserializes every row into your own type.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct QueryResult {
    #[serde(default, deserialize_with = "null_as_empty")]
    columns: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    rows: Vec<Vec<Value>>,
}

fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

impl QueryResult {
    /// A result with these columns and rows, e.g. for
    /// [`MockHost::sql_query`](crate::testing::MockHost::sql_query).
    pub fn new<C, S>(columns: C, rows: Vec<Vec<Value>>) -> Self
    where
        C: IntoIterator<Item = S>,
        S: Into<String>,
    {
        QueryResult {
            columns: columns.into_iter().map(Into::into).collect(),
            rows,
        }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows, each a `Vec` of values in column order.
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    /// The rows, taken out of the result.
    pub fn into_rows(self) -> Vec<Vec<Value>> {
        self.rows
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows as [`Row`]s.
    pub fn iter(&self) -> Rows<'_> {
        Rows {
            result: self,
            next: 0,
        }
    }

    /// Row `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<Row<'_>> {
        self.rows.get(i).map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<Row<'_>> {
        self.get(0)
    }

    /// The only row; an error unless there is exactly one.
    pub fn one(&self) -> Result<Row<'_>> {
        match self.rows.len() {
            1 => Ok(self.get(0).expect("one row")),
            n => Err(Error::msg(format!("expected exactly one row, got {}", n))),
        }
    }

    /// The first value of the first row (`SELECT count(*) …`), if any.
    pub fn scalar(&self) -> Option<&Value> {
        self.rows.first().and_then(|r| r.first())
    }

    /// The values of column `name` (the last column of that name), or `None`
    /// when there is no such column.
    pub fn column(&self, name: &str) -> Option<Vec<&Value>> {
        let i = self.columns.iter().rposition(|c| c == name)?;
        Some(self.rows.iter().map(|r| &r[i]).collect())
    }

    /// Every row deserialized into `T` from an object keyed by column name
    /// (a `#[derive(Deserialize)]` struct, a map, `serde_json::Value`).
    pub fn rows_as<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.iter()
            .enumerate()
            .map(|(i, row)| row.parse().map_err(|e| e.context(format!("row {}", i + 1))))
            .collect()
    }
}

impl<'a> IntoIterator for &'a QueryResult {
    type Item = Row<'a>;
    type IntoIter = Rows<'a>;

    fn into_iter(self) -> Rows<'a> {
        self.iter()
    }
}

/// An iterator over the [`Row`]s of a [`QueryResult`].
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    result: &'a QueryResult,
    next: usize,
}

impl<'a> Iterator for Rows<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        let row = self.result.rows.get(self.next).map(|values| Row {
            columns: &self.result.columns,
            values,
        })?;
        self.next += 1;
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.result.rows.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Rows<'_> {}

/// One row of a [`QueryResult`]: its values, by column name or position.
///
/// `row["name"]` and `row[0]` give `Value::Null` for a column that does not
/// exist (like indexing a `serde_json::Value`); when two columns share a
/// name, the last one wins (use [`values`](Row::values) for the others).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

static NULL: Value = Value::Null;

impl<'a> Row<'a> {
    /// The value of column `name`, if there is such a column.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        let i = self.columns.iter().rposition(|c| c == name)?;
        self.values.get(i)
    }

    /// The values, in column order.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The column names, in order.
    pub fn columns(&self) -> &'a [String] {
        self.columns
    }

    /// The row as a JSON object keyed by column name.
    pub fn to_map(&self) -> Map<String, Value> {
        self.columns
            .iter()
            .cloned()
            .zip(self.values.iter().cloned())
            .collect()
    }

    /// The row deserialized into `T` from an object keyed by column name.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(Value::Object(self.to_map())).map_err(Error::new)
    }
}

impl<'a> Index<&str> for Row<'a> {
    type Output = Value;

    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

impl<'a> Index<usize> for Row<'a> {
    type Output = Value;

    fn index(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&NULL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QueryResult {
        QueryResult::new(
            ["id", "name"],
            vec![vec![json!(1), json!("a")], vec![json!(2), Value::Null]],
        )
    }

    #[test]
    fn rows_by_name_and_position() {
        let r = sample();
        assert_eq!(r.columns(), ["id", "name"]);
        assert_eq!((r.len(), r.is_empty()), (2, false));
        let names: Vec<&Value> = r.iter().map(|row| row.get("name").unwrap()).collect();
        assert_eq!(names, [&json!("a"), &Value::Null]);
        let mut ids = Vec::new();
        for row in &r {
            ids.push(row[0].as_i64().unwrap());
        }
        assert_eq!(ids, [1, 2]);
        assert_eq!(r.iter().len(), 2);
        let first = r.first().unwrap();
        assert_eq!(first.get("id"), Some(&json!(1)));
        assert_eq!(first.get("missing"), None);
        assert_eq!(first["missing"], Value::Null);
        assert_eq!(first[9], Value::Null);
        assert_eq!(
            first.to_map(),
            json!({ "id": 1, "name": "a" })
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(r.scalar(), Some(&json!(1)));
        assert_eq!(r.column("name"), Some(vec![&json!("a"), &Value::Null]));
        assert_eq!(r.column("nope"), None);
        assert_eq!(
            r.one().unwrap_err().to_string(),
            "expected exactly one row, got 2"
        );
        assert!(QueryResult::default().scalar().is_none());
    }

    #[test]
    fn duplicate_columns_last_wins() {
        let r = QueryResult::new(["id", "id"], vec![vec![json!(1), json!(2)]]);
        let row = r.one().unwrap();
        assert_eq!(row["id"], json!(2));
        assert_eq!(row.to_map()["id"], json!(2));
        assert_eq!(row.values(), [json!(1), json!(2)]);
    }

    #[test]
    fn rows_as_structs() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct User {
            id: i64,
            name: Option<String>,
        }
        let users: Vec<User> = sample().rows_as().unwrap();
        assert_eq!(
            users,
            [
                User {
                    id: 1,
                    name: Some("a".into())
                },
                User { id: 2, name: None }
            ]
        );
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Strict {
            id: String,
        }
        let e = sample().rows_as::<Strict>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "row 1: invalid type: integer `1`, expected a string"
        );
    }

    #[test]
    fn null_columns_and_rows_read_as_empty() {
        let r: QueryResult =
            serde_json::from_value(json!({ "columns": null, "rows": null })).unwrap();
        assert_eq!(r, QueryResult::default());
    }

    #[test]
    fn blobs() {
        assert_eq!(blob(&[0xff, 0]), json!({ "base64": "/wA=" }));
        assert_eq!(as_blob(&json!({ "base64": "/wA=" })), Some(vec![0xff, 0]));
        assert_eq!(as_blob(&json!("ok")), Some(b"ok".to_vec()));
        assert_eq!(as_blob(&json!({ "base64": "/wA=", "x": 1 })), None);
        assert_eq!(as_blob(&json!(1)), None);
    }
}
