//! The diesel side of stored enums that a row holds as an optional column (`Option<Hat>`, `Option<Decision>`,
//! …): read and written as their stored name, where an unknown stored name fails the query (an
//! [`UnknownStored`](crate::domain::status::UnknownStored) error, a 500 with the cause logged), never a
//! default. Required columns use `#[diesel(deserialize_as = String, serialize_as = String)]` instead; diesel's
//! `Option<T>` impls need `T: FromSql` itself, which the `foreign_derive` proxies below give without the
//! domain or access modules depending on diesel.

use diesel::sql_types::Text;

use crate::access::Hat;
use crate::domain::status::{DecidedVia, Decision};

/// `FromSql`/`ToSql` as the stored name, for every backend (the multi-connection one included).
macro_rules! text_column {
    ($name:ty) => {
        impl<DB> diesel::deserialize::FromSql<Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<Text, DB>>::from_sql(bytes)?;
                Ok(<$name>::try_from(text)?)
            }
        }

        impl<DB> diesel::serialize::ToSql<Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<Text, DB>>::to_sql(self.as_str(), out)
            }
        }
    };
}

text_column!(Hat);
text_column!(Decision);
text_column!(DecidedVia);

// `AsExpression` and `Queryable` for the enums themselves (diesel's `foreign_derive`: the proxy is never built).
#[derive(diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(foreign_derive, sql_type = Text)]
#[expect(
    dead_code,
    reason = "a diesel foreign_derive proxy: it only carries the derives for `Hat`"
)]
struct HatColumn(Hat);

#[derive(diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(foreign_derive, sql_type = Text)]
#[expect(
    dead_code,
    reason = "a diesel foreign_derive proxy: it only carries the derives for `Decision`"
)]
struct DecisionColumn(Decision);

#[derive(diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(foreign_derive, sql_type = Text)]
#[expect(
    dead_code,
    reason = "a diesel foreign_derive proxy: it only carries the derives for `DecidedVia`"
)]
struct DecidedViaColumn(DecidedVia);
