//! Hand-written SQL that the database prepares once per connection and reuses, for the hot write paths.
//! diesel's `sql_query` marks every statement as unsafe to cache, so PostgreSQL parses and plans it on every
//! call; a [`CachedSql`] is text and binds like `sql_query`, but its placeholders come from the backend's
//! query builder (`$n` on PostgreSQL, `?` on SQLite) and its text is the key of the connection's prepared
//! statement cache. Only use it for statements whose text takes a bounded number of shapes (a fixed list of
//! legs, not a user-sized `IN` list): every distinct text stays prepared for the life of the connection.

use std::borrow::Cow;
use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

use super::DbConn;

/// The backend of [`DbConn`] (PostgreSQL or SQLite, chosen per connection).
type Backend = <DbConn as diesel::Connection>::Backend;

/// One piece of a [`CachedSql`]: statement text, or a value bound in its place.
enum Part<'a> {
    Text(Cow<'static, str>),
    Bind(Box<dyn QueryFragment<Backend> + Send + 'a>),
}

/// A statement built from text and binds, prepared once per connection (see the module's doc).
#[must_use = "a statement does nothing until it is executed or loaded"]
pub struct CachedSql<'a> {
    parts: Vec<Part<'a>>,
}

/// Starts a statement with `text`.
pub fn cached_sql(text: impl Into<Cow<'static, str>>) -> CachedSql<'static> {
    CachedSql {
        parts: vec![Part::Text(text.into())],
    }
}

impl<'a> CachedSql<'a> {
    /// Appends statement text.
    pub fn sql(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// Appends another statement's text and binds (a part reused in several statements).
    pub fn append(mut self, other: CachedSql<'a>) -> Self {
        self.parts.extend(other.parts);
        self
    }

    /// Appends a placeholder bound to `value` as SQL type `ST`.
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        ST: 'static,
        Backend: HasSqlType<ST>,
        U: ToSql<ST, Backend> + Send + 'a,
    {
        self.parts.push(Part::Bind(Box::new(Bound {
            value,
            sql_type: PhantomData::<fn() -> ST>,
        })));
        self
    }
}

struct Bound<ST, U> {
    value: U,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST, U> QueryFragment<Backend> for Bound<ST, U>
where
    Backend: HasSqlType<ST>,
    U: ToSql<ST, Backend>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        pass.push_bind_param::<ST, U>(&self.value)
    }
}

impl QueryFragment<Backend> for CachedSql<'_> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Text(text) => pass.push_sql(text),
                Part::Bind(bind) => bind.walk_ast(pass.reborrow())?,
            }
        }
        Ok(())
    }
}

/// Keyed by its text (no static id), like any statement whose shape is only known at run time.
impl QueryId for CachedSql<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for CachedSql<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<DbConn> for CachedSql<'_> {}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Nullable, Text};

    use super::cached_sql;
    use crate::db::DbConn;

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = Nullable<Text>)]
        t: Option<String>,
    }

    #[test]
    fn binds_go_where_they_are_appended_and_a_reused_text_answers_with_its_new_binds() {
        let mut conn = DbConn::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        let query = |n: i64, t: Option<&str>| {
            cached_sql("SELECT CAST(")
                .bind::<BigInt, _>(n)
                .sql(" + 1 AS BIGINT) AS n, ")
                .append(cached_sql("").bind::<Nullable<Text>, _>(t.map(str::to_owned)))
                .sql(" AS t")
        };
        let first: Row = query(41, Some("a")).get_result(&mut conn).unwrap();
        assert_eq!(
            first,
            Row {
                n: 42,
                t: Some("a".into())
            }
        );
        // Same text, so the cached statement is reused with the new values.
        let second: Row = query(-2, None).get_result(&mut conn).unwrap();
        assert_eq!(second, Row { n: -1, t: None });
    }
}
