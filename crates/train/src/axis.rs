//! Sweep axes: a model setting (`activation`, `init`, `norm`) that takes one
//! value or a list of values.
//!
//! `"init": "glorot"` and `"init": ["pytorch-default", "glorot"]` both parse;
//! the plan runs every combination of the listed values (see
//! [`crate::plan`]), and each run trains the experiment *resolved* to its
//! own values ([`crate::spec::Experiment::resolved`]), whose axes hold one
//! value each. An axis is written back the way it was given: a single value
//! as that value, a list as a list, so files and `run.json` round-trip.

use gradscope_models::{Activation, Init, Norm};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Debug;

/// One value, or the non-empty list of values a sweep runs over.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis<T>(Vec<T>);

impl<T: Copy + PartialEq> Axis<T> {
    pub fn one(value: T) -> Axis<T> {
        Axis(vec![value])
    }

    /// Every value, in the file's order.
    pub fn values(&self) -> &[T] {
        &self.0
    }

    /// Whether the experiment sweeps this setting (two values or more).
    pub fn is_swept(&self) -> bool {
        self.0.len() > 1
    }

    /// The setting of one run. In a resolved experiment (every run's own
    /// config) this is the only value; in a swept one it is the first, so
    /// callers that build a network resolve first.
    pub fn value(&self) -> T {
        self.0[0]
    }
}

impl<T: Serialize> Serialize for Axis<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned + Copy + PartialEq + Debug + Label> Deserialize<'de>
    for Axis<T>
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Array(items) = value else {
            // One value: the element type's own message, unchanged.
            return T::deserialize(value)
                .map(Axis::one)
                .map_err(D::Error::custom);
        };
        if items.is_empty() {
            return Err(D::Error::custom(
                "an empty list: give one value, or a list of the values to sweep over",
            ));
        }
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let v = T::deserialize(item)
                .map_err(|e| D::Error::custom(format!("list item {}: {e}", i + 1)))?;
            if out.contains(&v) {
                return Err(D::Error::custom(format!(
                    "lists {} twice; each value of a sweep runs once",
                    v.label()
                )));
            }
            out.push(v);
        }
        Ok(Axis(out))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Axis<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Axis_of_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<T>();
        schemars::json_schema!({
            "description": "One value, or a list of values to sweep over (every combination of the swept settings is run).",
            "anyOf": [
                one.clone(),
                { "type": "array", "items": one, "minItems": 1, "uniqueItems": true }
            ]
        })
    }
}

/// How a setting's value is written in summary.csv and in run names.
pub trait Label {
    /// As in the experiment file: `tanh`, `pytorch-default`, `normal0.05`
    /// (run names use it too, via gradscope_format::names).
    fn label(&self) -> String;
}

impl Label for Activation {
    fn label(&self) -> String {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
        .to_string()
    }
}

impl Label for Init {
    fn label(&self) -> String {
        match self {
            Init::PytorchDefault => "pytorch-default".to_string(),
            Init::Glorot => "glorot".to_string(),
            Init::Kaiming => "kaiming".to_string(),
            Init::Normal { std } => format!("normal{std}"),
        }
    }
}

impl Label for Norm {
    fn label(&self) -> String {
        match self {
            Norm::None => "none",
            Norm::Batchnorm => "batchnorm",
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn one_value_and_a_list_both_parse_and_write_back_as_given() {
        let one: Axis<Init> = parse(r#""glorot""#).unwrap();
        assert_eq!(one.values(), [Init::Glorot]);
        assert!(!one.is_swept());
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""glorot""#);

        let text = r#"["pytorch-default",{"normal":{"std":0.05}}]"#;
        let many: Axis<Init> = parse(text).unwrap();
        assert_eq!(
            many.values(),
            [Init::PytorchDefault, Init::Normal { std: 0.05 }]
        );
        assert!(many.is_swept());
        assert_eq!(serde_json::to_string(&many).unwrap(), text);
    }

    #[test]
    fn empty_lists_duplicates_and_bad_items_are_refused_by_position() {
        let e = parse::<Axis<Norm>>("[]").unwrap_err();
        assert!(e.contains("empty list"), "{e}");
        let e = parse::<Axis<Activation>>(r#"["tanh", "tanh"]"#).unwrap_err();
        assert!(e.contains("lists tanh twice"), "{e}");
        let e = parse::<Axis<Activation>>(r#"["tanh", "softplus"]"#).unwrap_err();
        assert!(e.contains("list item 2") && e.contains("softplus"), "{e}");
    }

    #[test]
    fn labels_are_the_files_own_words() {
        assert_eq!(Norm::None.label(), "none");
        assert_eq!(Init::Normal { std: 0.05 }.label(), "normal0.05");
        assert_eq!(Init::PytorchDefault.label(), "pytorch-default");
    }
}
