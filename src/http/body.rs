//! Request bodies: the create body as JSON, the verify form's `otp` field.
//!
//! Both JSON and forms (urlencoded or multipart) are read into a JSON value, so a
//! credential schema sees one shape. Any unreadable body maps to the endpoint's
//! own error code, never a framework text error.

use std::borrow::Cow;
use std::convert::Infallible;

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde_json::{Map, Value};

/// The body's media type, lower-cased (copied only when it is not already),
/// without parameters.
fn media_type(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = ct.split(';').next()?.trim();
    Some(if media.bytes().any(|b| b.is_ascii_uppercase()) {
        media.to_ascii_lowercase().into()
    } else {
        media.into()
    })
}

/// One form field: a text value, or a file part (which no schema accepts).
enum Field<'b> {
    Text(Cow<'b, str>),
    File,
}

/// Reads a create body into JSON: a JSON document, or a form as an object
/// (repeated names and names ending in `[]` become arrays). `None` if unreadable.
pub async fn create_value(headers: &HeaderMap, body: Bytes) -> Option<Value> {
    let media = media_type(headers)?;
    if media == "application/json" || media.ends_with("+json") {
        return serde_json::from_slice(&body).ok();
    }
    let fields = form_fields(headers, &media, body).await?;
    let mut map = Map::new();
    for (name, field) in fields {
        let Field::Text(value) = field else {
            return None;
        };
        let always_array = name.ends_with("[]");
        let value = value.into_owned();
        match map.get_mut(&name) {
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(single) => {
                let first = single.take();
                *single = Value::Array(vec![first, Value::String(value)]);
            }
            None if always_array => {
                map.insert(name, Value::Array(vec![Value::String(value)]));
            }
            None => {
                map.insert(name, Value::String(value));
            }
        }
    }
    Some(Value::Object(map))
}

/// The `otp` field of a verify form; `None` if the body is not a form, the field is
/// missing, repeated or a file. Borrowed from the body when it needed no decoding
/// (the usual urlencoded form).
pub async fn otp_field<'b>(headers: &HeaderMap, body: &'b Bytes) -> Option<Cow<'b, str>> {
    let media = media_type(headers)?;
    match &*media {
        "application/json" => {
            // `{"otp": "..."}`, for frontends that send JSON everywhere.
            let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
                return None;
            };
            match map.remove("otp") {
                Some(Value::String(code)) => Some(Cow::Owned(code)),
                _ => None,
            }
        }
        "application/x-www-form-urlencoded" => {
            the_only_otp(form_urlencoded::parse(body).map(|(name, v)| (name, Field::Text(v))))
        }
        "multipart/form-data" => the_only_otp(
            multipart_fields(headers, body.clone())
                .await?
                .into_iter()
                .map(|(name, field)| (Cow::Owned(name), field)),
        ),
        _ => None,
    }
}

/// The text of the one field called `otp`; `None` if there is none, more than one,
/// or a file.
fn the_only_otp<'b>(
    fields: impl Iterator<Item = (Cow<'b, str>, Field<'b>)>,
) -> Option<Cow<'b, str>> {
    let mut found = fields.filter(|(name, _)| name == "otp");
    match (found.next(), found.next()) {
        (Some((_, Field::Text(v))), None) => Some(v),
        _ => None,
    }
}

async fn form_fields(
    headers: &HeaderMap,
    media: &str,
    body: Bytes,
) -> Option<Vec<(String, Field<'static>)>> {
    match media {
        "application/x-www-form-urlencoded" => Some(
            form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), Field::Text(Cow::Owned(v.into_owned()))))
                .collect(),
        ),
        "multipart/form-data" => multipart_fields(headers, body).await,
        _ => None,
    }
}

async fn multipart_fields(
    headers: &HeaderMap,
    body: Bytes,
) -> Option<Vec<(String, Field<'static>)>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = multer::parse_boundary(content_type).ok()?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name()?.to_owned();
        if field.file_name().is_some() {
            out.push((name, Field::File));
            continue;
        }
        let text = field.text().await.ok()?;
        out.push((name, Field::Text(Cow::Owned(text))));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(ct).expect("header"),
        );
        h
    }

    #[tokio::test]
    async fn forms_become_objects_with_arrays_for_repeats() {
        let h = with_type("application/x-www-form-urlencoded");
        let v = create_value(&h, Bytes::from("email=a%40b.c&a=1&a=2&t[]=x"))
            .await
            .expect("form");
        assert_eq!(
            v,
            serde_json::json!({"email": "a@b.c", "a": ["1", "2"], "t[]": ["x"]})
        );
        assert_eq!(
            create_value(&h, Bytes::new()).await,
            Some(serde_json::json!({}))
        );
    }

    #[tokio::test]
    async fn json_and_other_types() {
        let v = create_value(
            &with_type("application/json; charset=utf-8"),
            Bytes::from(" \"x\" "),
        )
        .await;
        assert_eq!(v, Some(serde_json::json!("x")));
        assert_eq!(
            create_value(&with_type("application/json"), Bytes::from("test")).await,
            None
        );
        assert_eq!(
            create_value(&with_type("text/plain"), Bytes::from("[\"test\"]")).await,
            None
        );
        assert_eq!(
            create_value(&HeaderMap::new(), Bytes::from("a=1")).await,
            None
        );
    }

    #[tokio::test]
    async fn multipart_text_fields_are_read_and_files_refused() {
        let h = with_type("multipart/form-data; boundary=XyZ");
        let body =
            "--XyZ\r\nContent-Disposition: form-data; name=\"otp\"\r\n\r\nabc\r\n--XyZ--\r\n";
        assert_eq!(
            otp_field(&h, &Bytes::from(body)).await.as_deref(),
            Some("abc")
        );
        let file = "--XyZ\r\nContent-Disposition: form-data; name=\"otp\"; filename=\"a\"\r\n\r\nabc\r\n--XyZ--\r\n";
        assert_eq!(otp_field(&h, &Bytes::from(file)).await, None);
        assert_eq!(otp_field(&h, &Bytes::from("garbage")).await, None);
    }

    #[tokio::test]
    async fn the_otp_field_must_appear_once() {
        let h = with_type("application/x-www-form-urlencoded");
        assert_eq!(
            otp_field(&h, &Bytes::from("otp=a&x=1")).await.as_deref(),
            Some("a")
        );
        assert_eq!(otp_field(&h, &Bytes::from("otp=a&otp=b")).await, None);
        assert_eq!(otp_field(&h, &Bytes::from("ot=a")).await, None);
        let json = with_type("application/json");
        assert_eq!(
            otp_field(&json, &Bytes::from("{\"otp\":\"a\"}"))
                .await
                .as_deref(),
            Some("a")
        );
        for bad in ["{\"otp\":1}", "[\"a\"]", "{\"code\":\"a\"}", "not json"] {
            assert_eq!(otp_field(&json, &Bytes::from(bad)).await, None, "{bad}");
        }
    }
}
