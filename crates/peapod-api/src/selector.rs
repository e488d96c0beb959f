//! Label selectors in kubectl `-l` syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
//! `a notin (x)`, `a`, `!a`, `a>1`, `a<1`; commas AND the requirements.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::validation::names;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("invalid label selector {selector:?}: {reason}")]
    Syntax { selector: String, reason: String },
    #[error("invalid label key {key:?}: {reason}")]
    Key { key: String, reason: String },
    #[error("invalid label value {value:?}: {reason}")]
    Value { value: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let in_set = |v: &String| self.values.contains(v);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(in_set),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(in_set),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => self.compare(value),
        }
    }

    fn compare(&self, value: Option<&String>) -> bool {
        let (Some(have), Some(want)) = (
            value.and_then(|v| v.parse::<i64>().ok()),
            self.values.first().and_then(|v| v.parse::<i64>().ok()),
        ) else {
            return false;
        };
        if self.operator == Operator::GreaterThan {
            have > want
        } else {
            have < want
        }
    }
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '<' | '>' | '(' | ')' | ',') || c.is_whitespace()
}

fn tokenize(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '!' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::NotEq
            }
            '!' => Token::Not,
            '=' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::DoubleEq
            }
            '=' => Token::Eq,
            '>' => Token::Gt,
            '<' => Token::Lt,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            c => {
                let mut ident = c.to_string();
                while let Some(&n) = chars.peek().filter(|n| !is_special(**n)) {
                    ident.push(n);
                    chars.next();
                }
                Token::Ident(ident)
            }
        };
        tokens.push(token);
    }
    tokens
}

struct Parser<'a> {
    selector: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> SelectorError {
        SelectorError::Syntax {
            selector: self.selector.to_string(),
            reason: reason.to_string(),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        if self.tokens.is_empty() {
            return Ok(requirements);
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                None => return Ok(requirements),
                Some(Token::Comma) if self.peek().is_some() => {}
                Some(Token::Comma) => return Err(self.error("expected a requirement after ','")),
                Some(_) => return Err(self.error("expected ',' between requirements")),
            }
        }
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Some(Token::Ident(key)) => {
                validate_key(&key)?;
                Ok(key)
            }
            _ => Err(self.error("expected a label key")),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            let key = self.key()?;
            return Ok(self.build(key, Operator::DoesNotExist, Vec::new()));
        }
        let key = self.key()?;
        let operator = match self.peek() {
            None | Some(Token::Comma) => return Ok(self.build(key, Operator::Exists, Vec::new())),
            Some(Token::Eq) | Some(Token::DoubleEq) => Operator::Equals,
            Some(Token::NotEq) => Operator::NotEquals,
            Some(Token::Gt) => Operator::GreaterThan,
            Some(Token::Lt) => Operator::LessThan,
            Some(Token::Ident(word)) if word == "in" => Operator::In,
            Some(Token::Ident(word)) if word == "notin" => Operator::NotIn,
            Some(_) => return Err(self.error("expected an operator after the key")),
        };
        self.pos += 1;
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => vec![self.single_value()],
        };
        for v in &values {
            validate_value(v)?;
        }
        if matches!(operator, Operator::GreaterThan | Operator::LessThan)
            && values[0].parse::<i64>().is_err()
        {
            return Err(self.error("for 'Gt', 'Lt' operators, the value must be an integer"));
        }
        Ok(self.build(key, operator, values))
    }

    fn build(&self, key: String, operator: Operator, values: Vec<String>) -> Requirement {
        Requirement {
            key,
            operator,
            values,
        }
    }

    /// A value may be empty (`a=`).
    fn single_value(&mut self) -> String {
        match self.peek() {
            Some(Token::Ident(v)) => {
                let v = v.clone();
                self.pos += 1;
                v
            }
            _ => String::new(),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.next() != Some(Token::Open) {
            return Err(self.error("expected '(' after 'in' or 'notin'"));
        }
        let mut values = Vec::new();
        loop {
            values.push(self.single_value());
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::Close) => break,
                _ => return Err(self.error("expected ',' or ')' in the value set")),
            }
        }
        if values == [""] {
            return Err(self.error("for 'in', 'notin' operators, values set can't be empty"));
        }
        Ok(values)
    }
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    match names::qualified_name(key).into_iter().next() {
        None => Ok(()),
        Some(reason) => Err(SelectorError::Key {
            key: key.to_string(),
            reason,
        }),
    }
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    match names::label_value(value).into_iter().next() {
        None => Ok(()),
        Some(reason) => Err(SelectorError::Value {
            value: value.to_string(),
            reason,
        }),
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parser = Parser {
            selector: s,
            tokens: tokenize(s),
            pos: 0,
        };
        Ok(Self {
            requirements: parser.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
        selector
            .parse::<LabelSelector>()
            .unwrap()
            .matches(&labels(pairs))
    }

    #[test]
    fn equality_operators() {
        assert!(matches("app=web", &[("app", "web")]));
        assert!(matches("app==web", &[("app", "web")]));
        assert!(!matches("app=web", &[("app", "db")]));
        assert!(!matches("app=web", &[]));
        assert!(matches("app!=web", &[("app", "db")]));
        assert!(matches("app!=web", &[]), "!= matches a missing key");
        assert!(!matches("app!=web", &[("app", "web")]));
        assert!(matches("app=", &[("app", "")]));
    }

    #[test]
    fn set_operators() {
        assert!(matches("env in (prod, staging)", &[("env", "staging")]));
        assert!(!matches("env in (prod,staging)", &[("env", "dev")]));
        assert!(!matches("env in (prod)", &[]));
        assert!(matches("env notin (prod)", &[("env", "dev")]));
        assert!(matches("env notin (prod)", &[]));
        assert!(!matches("env notin (prod)", &[("env", "prod")]));
    }

    #[test]
    fn existence_and_and() {
        assert!(matches("app", &[("app", "x")]));
        assert!(!matches("app", &[]));
        assert!(matches("!app", &[]));
        assert!(!matches("!app", &[("app", "x")]));
        assert!(matches(
            "app=web, tier!=db ,!legacy",
            &[("app", "web"), ("tier", "fe")]
        ));
        assert!(!matches(
            "app=web,tier=db",
            &[("app", "web"), ("tier", "fe")]
        ));
        assert!(matches("", &[]));
        assert!(matches("example.com/app=x", &[("example.com/app", "x")]));
    }

    #[test]
    fn numeric_comparison() {
        assert!(matches("gen>1", &[("gen", "2")]));
        assert!(!matches("gen>1", &[("gen", "1")]));
        assert!(matches("gen<10", &[("gen", "3")]));
        assert!(!matches("gen<10", &[]));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "app=web,",
            "app in prod",
            "app in ()",
            "=web",
            "app web",
            "!app=web",
            "app in (a",
            "gen>x",
            ",",
        ] {
            assert!(bad.parse::<LabelSelector>().is_err(), "{bad:?} should fail");
        }
        let err = "app=a b".parse::<LabelSelector>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid label selector \"app=a b\": expected ',' between requirements"
        );
        let err = "-x=1".parse::<LabelSelector>().unwrap_err();
        assert!(matches!(err, SelectorError::Key { .. }), "{err}");
        let err = "x=-1-".parse::<LabelSelector>().unwrap_err();
        assert!(matches!(err, SelectorError::Value { .. }), "{err}");
    }
}
