//! Just enough PromQL reading to check what a dashboard or an alert rule
//! asks for: the metric names it selects and the label names it uses.
//! Syntax is promtool's job; this finds names.

/// Metric names (`portunus_…`) and label names an expression refers to:
/// matcher names inside `{}`, the lists of `by`, `without`, `on`,
/// `ignoring`, `group_left` and `group_right`, and `{{label}}` legends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refs {
    pub metrics: Vec<String>,
    pub labels: Vec<String>,
}

const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

pub fn refs(expr: &str) -> Refs {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Refs::default();
    let mut i = 0;
    // Inside `{…}`: an identifier followed by a matcher operator is a label.
    let mut in_braces = false;
    // After `by` and the like: identifiers up to `)` are labels.
    let mut pending_list = false;
    let mut in_list = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '$' {
            // A Grafana variable such as `$__rate_interval` names nothing.
            i += 1;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            continue;
        }
        if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if in_list || (in_braces && matches!(next, Some('=' | '!'))) {
                out.labels.push(word);
            } else if LABEL_LISTS.contains(&word.as_str()) && next == Some(&'(') {
                pending_list = true;
            } else if word.starts_with("portunus_") {
                out.metrics.push(word);
            }
            continue;
        }
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            '(' if pending_list => {
                pending_list = false;
                in_list = true;
            }
            ')' => in_list = false,
            _ => {}
        }
        i += 1;
    }
    out
}

/// Label names a Grafana legend (`{{client}} {{rule}}`) shows.
pub fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}"))
        .map(|(label, _)| label.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_metrics_and_every_kind_of_label_reference() {
        let got = refs(
            r#"sum by (client, rule) (rate(portunus_rule_bytes_in_total{client=~"$client", owner!="x{y}"}[$__rate_interval]))
               and on (client) portunus_client_up == 0 or vector(0)"#,
        );
        assert_eq!(
            got.metrics,
            ["portunus_rule_bytes_in_total", "portunus_client_up"]
        );
        assert_eq!(got.labels, ["client", "rule", "client", "owner", "client"]);
        assert_eq!(legend_labels("{{client}} {{ rule }}"), ["client", "rule"]);
    }
}
