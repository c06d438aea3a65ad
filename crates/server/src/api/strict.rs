//! A serde `Deserializer` over a JSON value that reads structs only from
//! JSON objects. serde's derive also reads a struct from an array of its
//! fields in order, so without this `{"rate_limit": [null, null]}` would
//! silently mean "no caps"; the API's contract says objects.

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Value};

/// Deserializes `T` from `value`, refusing an array wherever a struct is
/// expected, at any depth.
pub struct Strict(pub Value);

fn not_an_object(v: &Value, what: &str) -> Error {
    let found = match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    };
    de::Error::invalid_type(found, &what)
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(fields) => visitor.visit_map(Fields::new(fields)),
            scalar => de::Deserializer::deserialize_any(scalar, visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(fields) => visitor.visit_map(Fields::new(fields)),
            other => Err(not_an_object(&other, "a JSON object")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            v => visitor.visit_some(Strict(v)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // The API's enums are names (`"tcp"`); serde_json reads those.
        de::Deserializer::deserialize_enum(self.0, name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Fields {
        Fields {
            iter: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key: StringDeserializer<Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a value without its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Caps {
        rate: Option<u64>,
        burst: Option<u64>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "lowercase")]
    enum Proto {
        Tcp,
        Udp,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        caps: Option<Caps>,
        #[serde(default)]
        list: Vec<Caps>,
        proto: Option<Proto>,
        names: Option<Vec<String>>,
    }

    fn read(v: Value) -> Result<Body, String> {
        Body::deserialize(Strict(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn structs_come_only_from_objects() {
        let ok = read(json!({
            "caps": {"rate": 5},
            "list": [{"burst": 1}],
            "proto": "udp",
            "names": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(
            ok.caps,
            Some(Caps {
                rate: Some(5),
                burst: None
            })
        );
        assert_eq!(
            ok.list,
            vec![Caps {
                rate: None,
                burst: Some(1)
            }]
        );
        assert_eq!(ok.proto, Some(Proto::Udp));
        assert_eq!(
            ok.names.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(read(json!({"caps": null})).unwrap().caps, None);
        // What serde_json alone accepts, and this refuses.
        for bad in [
            json!({"caps": [null, null]}),
            json!({"caps": [1, 2]}),
            json!({"list": [[1, 2]]}),
            json!([null, [], null, null]),
        ] {
            assert!(
                Body::deserialize(bad.clone()).is_ok(),
                "serde_json takes {bad}"
            );
            let e = read(bad.clone()).unwrap_err();
            assert!(e.contains("expected a JSON object"), "{bad}: {e}");
        }
        for bad in [
            json!({"caps": {"rate": -1}}),
            json!({"proto": "sctp"}),
            json!({"x": 1}),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }
}
