//! Extractor configuration: JSON, form, query and path errors become problem responses (malformed JSON → 400
//! with the parser's position, wrong content type → 415, too large → 413, query errors → 400), and the extractors
//! handlers take for their input ([`Json`], [`OptionalJson`], [`Query`], [`Form`]), which also refuse text
//! holding U+0000.

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError, UrlencodedError};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::{AppError, ErrorKind, FieldError};

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

/// The console's forms: actix's size limit (16 KiB), with its refusals answered as problem responses like the
/// JSON ones rather than actix's plain text.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default().error_handler(|err, _req| form_error(err).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| path_error(err).into())
}

/// Limit for raw bodies (CSV uploads).
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

fn too_large(limit: usize) -> AppError {
    AppError::new(
        ErrorKind::PayloadTooLarge,
        format!("The request body is larger than the limit of {limit} bytes."),
    )
    .with_extension("limit_bytes", json!(limit))
}

pub fn json_error(err: JsonPayloadError) -> AppError {
    match err {
        JsonPayloadError::OverflowKnownLength { limit, .. } | JsonPayloadError::Overflow { limit } => {
            too_large(limit)
        }
        JsonPayloadError::ContentType => AppError::new(
            ErrorKind::UnsupportedMediaType,
            "Send the request body as JSON with `Content-Type: application/json`.",
        ),
        JsonPayloadError::Deserialize(e) => deserialize_error(&e),
        JsonPayloadError::Payload(PayloadError::Overflow) => AppError::new(
            ErrorKind::PayloadTooLarge,
            "The request body is larger than the configured limit.",
        ),
        other => AppError::bad_request(format!("The request body could not be read: {other}.")),
    }
}

/// Syntax errors are a 400 that says where parsing stopped; well-formed JSON of the wrong shape is a 422.
pub fn deserialize_error(e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => AppError::validation(vec![FieldError::new("body", e.to_string())]),
        Category::Syntax | Category::Eof | Category::Io => AppError::new(
            ErrorKind::MalformedJson,
            format!("The request body is not valid JSON: {e}."),
        )
        .with_extension("line", json!(e.line()))
        .with_extension("column", json!(e.column())),
    }
}

/// A newtype extractor around the value it read, with `into_inner` and `Deref` as actix's own have.
macro_rules! value_extractor {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<T> $name<T> {
            pub fn into_inner(self) -> T {
                self.0
            }
        }

        impl<T> std::ops::Deref for $name<T> {
            type Target = T;

            fn deref(&self) -> &T {
                &self.0
            }
        }
    };
}

value_extractor!(
    /// A JSON request body. It is read as `web::Json` reads one (content type, size limit and syntax errors as
    /// [`json_config`] answers them) and deserialized from the text as sent, so field errors read as before.
    /// A body whose text holds U+0000 is refused (422, naming the field). PostgreSQL cannot store that
    /// character, SQLite can, and XML exports cannot carry it. Refusing it here keeps both databases' answers the
    /// same.
    Json
);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Box<RawValue>>::from_request(req, payload);
        Box::pin(async move {
            let text = body.await?.into_inner();
            Ok(Json(parse_json_body(text.get())?))
        })
    }
}

/// A JSON body the client may leave out. None sent (no `Content-Length`, or 0, and no `Transfer-Encoding`)
/// is `None`; one sent is read as [`Json`] reads it, and its faults are answered. actix's `Option<Json<T>>`
/// would take a broken body for none and go on without it.
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if sends_no_body(req.headers()) {
            return Box::pin(std::future::ready(Ok(OptionalJson(None))));
        }
        let body = Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJson(Some(body.await?.0))) })
    }
}

/// Whether a request's headers say it carries no body.
pub fn sends_no_body(headers: &actix_web::http::header::HeaderMap) -> bool {
    use actix_web::http::header;
    !headers.contains_key(header::TRANSFER_ENCODING)
        && headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|len| len.to_str().is_ok_and(|len| len.trim() == "0"))
}

/// `text` (well-formed JSON) as a `T`, unless a string in it holds U+0000.
pub fn parse_json_body<T: DeserializeOwned>(text: &str) -> Result<T, AppError> {
    let parsed = serde_json::from_str(text).map_err(|e| deserialize_error(&e))?;
    // Only an escape can put U+0000 in JSON text (a raw control character is a syntax error). The escape's
    // text may also be the escaped backslash of `\\u0000`, so a match is confirmed on the parsed value.
    if text.contains("\\u0000") {
        let value: Value = serde_json::from_str(text).map_err(|e| deserialize_error(&e))?;
        if let Some(field) = nul_character_at(&value) {
            return Err(AppError::validation(vec![FieldError::new(
                field,
                "must not contain the NUL character (U+0000)",
            )]));
        }
    }
    Ok(parsed)
}

/// Where a string (or key) holding U+0000 is in `value`: `body` for the value itself, else its path
/// (`handover.date`, `flags[1].description`).
fn nul_character_at(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &str) -> Option<String> {
        let at = |step: String| {
            if path.is_empty() {
                step
            } else {
                format!("{path}.{step}")
            }
        };
        match value {
            Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
                "body".to_owned()
            } else {
                path.to_owned()
            }),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{path}[{i}]"))),
            Value::Object(map) => map.iter().find_map(|(key, item)| {
                if key.contains('\0') {
                    Some(at(key.replace('\0', "\\u0000")))
                } else {
                    walk(item, &at(key.clone()))
                }
            }),
            _ => None,
        }
    }
    walk(value, "")
}

value_extractor!(
    /// A query string, read as `web::Query` reads one (its errors a 400 naming the fault), refused (400,
    /// naming the parameter) when a name or value holds U+0000, for the reasons [`Json`] gives.
    Query
);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query).map_err(Into::into))
    }
}

/// `query` (the text after `?`) as a `T`, unless a parameter's name or value holds U+0000.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    if query.contains("%00") {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query).map_err(query_error)?;
        refuse_nul_characters(&pairs, "query string")?;
    }
    web::Query::<T>::from_query(query)
        .map(web::Query::into_inner)
        .map_err(query_error)
}

value_extractor!(
    /// A form body (the console's), read as `web::Form` reads one (content type, size limit), refused (400,
    /// naming the field) when a name or value holds U+0000, for the reasons [`Json`] gives.
    Form
);

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fields = web::Form::<Vec<(String, String)>>::from_request(req, payload);
        Box::pin(async move {
            let fields = fields.await?.into_inner();
            Ok(Form(parse_form(&fields)?))
        })
    }
}

/// A form's fields as a `T`, unless a name or value holds U+0000.
pub fn parse_form<T: DeserializeOwned>(fields: &[(String, String)]) -> Result<T, AppError> {
    refuse_nul_characters(fields, "form")?;
    let invalid = |e: &dyn std::fmt::Display| AppError::bad_request(format!("The form is invalid: {e}."));
    let text = serde_urlencoded::to_string(fields).map_err(|e| invalid(&e))?;
    serde_urlencoded::from_str(&text).map_err(|e| invalid(&e))
}

/// A 400 naming the first parameter or field (of a query string or form: `what`) whose name or value holds
/// U+0000.
fn refuse_nul_characters(pairs: &[(String, String)], what: &str) -> Result<(), AppError> {
    match pairs.iter().find(|(n, v)| n.contains('\0') || v.contains('\0')) {
        None => Ok(()),
        Some((name, _)) => Err(AppError::bad_request(format!(
            "The {what} is invalid: `{}` holds the NUL character (U+0000).",
            name.replace('\0', "%00")
        ))
        .with_errors(vec![FieldError::new(
            name.replace('\0', "%00"),
            "must not contain the NUL character (U+0000)",
        )])),
    }
}

fn form_error(err: UrlencodedError) -> AppError {
    match err {
        UrlencodedError::Overflow { limit, .. } => too_large(limit),
        UrlencodedError::ContentType => AppError::new(
            ErrorKind::UnsupportedMediaType,
            "Send the form as `Content-Type: application/x-www-form-urlencoded`.",
        ),
        other => AppError::bad_request(format!("The form could not be read: {other}")),
    }
}

fn query_error(err: QueryPayloadError) -> AppError {
    match err {
        QueryPayloadError::Deserialize(e) => {
            AppError::bad_request(format!("The query string is invalid: {e}."))
                .with_errors(vec![FieldError::new("query", e.to_string())])
        }
        other => AppError::bad_request(format!("The query string is invalid: {other}.")),
    }
}

fn path_error(err: PathError) -> AppError {
    AppError::not_found(format!("No resource at this path: {err}."))
}

/// Refuses a body that is not sent as `text/csv` (415), for the CSV import routes.
pub fn require_csv(req: &actix_web::HttpRequest, what: &str) -> Result<(), AppError> {
    let is_csv = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    if is_csv {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Send the {what} as `Content-Type: text/csv`."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Probe {
        #[expect(dead_code, reason = "only deserialization is checked")]
        name: String,
        #[serde(default)]
        #[expect(dead_code, reason = "only deserialization is checked")]
        tags: Vec<String>,
    }

    fn field_of(err: AppError) -> String {
        err.errors()[0].field.clone()
    }

    #[test]
    fn a_nul_character_anywhere_is_refused_with_its_field() {
        let err = parse_json_body::<Probe>(r#"{"name": "a\u0000b"}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        assert_eq!(field_of(err), "name");
        let err = parse_json_body::<Probe>(r#"{"name": "x", "tags": ["ok", "\u0000"]}"#).unwrap_err();
        assert_eq!(field_of(err), "tags[1]");
        // An unknown field is ignored as before, but not its NUL.
        let err = parse_json_body::<Probe>(r#"{"name": "x", "extra": {"a\u0000": 1}}"#).unwrap_err();
        assert_eq!(field_of(err), "extra.a\\u0000");
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_text_not_a_nul_character() {
        assert!(parse_json_body::<Probe>(r#"{"name": "C:\\u0000\\dir"}"#).is_ok());
    }

    #[derive(Debug, serde::Deserialize)]
    struct Filter {
        #[expect(dead_code, reason = "only deserialization is checked")]
        sector: Option<String>,
    }

    #[test]
    fn a_query_parameter_holding_a_nul_character_is_refused_by_name() {
        let err = parse_query::<Filter>("limit=1&sector=a%00b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        assert_eq!(field_of(err), "sector");
        assert!(
            parse_query::<Filter>("sector=%2500").is_ok(),
            "an escaped percent sign is text"
        );
        assert!(parse_query::<Filter>("sector=wash").is_ok());
        let err = parse_query::<Filter>("sector=a&sector=b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest, "errors read as before");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Answer {
        csrf: String,
        #[serde(default)]
        count: Option<u32>,
    }

    #[test]
    fn a_form_field_holding_a_nul_character_is_refused_and_others_read_as_typed() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        let err = parse_form::<Answer>(&fields(&[("csrf", "t"), ("comment", "a\0b")])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        assert_eq!(field_of(err), "comment");
        let answer = parse_form::<Answer>(&fields(&[("csrf", "t&x=1"), ("count", "3")])).unwrap();
        assert_eq!((answer.csrf.as_str(), answer.count), ("t&x=1", Some(3)));
        let err = parse_form::<Answer>(&fields(&[("csrf", "t"), ("count", "three")])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadRequest);
    }

    #[test]
    fn field_errors_read_as_before() {
        let err = parse_json_body::<Probe>(r#"{"name": 1}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        let direct = serde_json::from_str::<Probe>(r#"{"name": 1}"#).unwrap_err();
        assert!(
            err.errors()[0].message.contains(&direct.to_string()),
            "{:?}",
            err.errors()
        );
        let err = parse_json_body::<Probe>(r#"{"name": "a", "name": "b"}"#).unwrap_err();
        assert!(
            err.errors()[0].message.contains("duplicate field"),
            "{:?}",
            err.errors()
        );
    }
}
