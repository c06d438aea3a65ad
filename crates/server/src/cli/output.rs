//! Text and JSON rendering of listings.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The elements of a JSON array; anything else has none.
pub fn items(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array().map(|a| a.as_slice()).unwrap_or_default()
}

/// A list command's output: the whole answer as JSON, or `rows` rendered
/// one line each under `headers`.
pub fn print_listing(
    answer: &serde_json::Value,
    format: Format,
    rows: &[serde_json::Value],
    headers: &[&str],
    row: impl Fn(&serde_json::Value) -> Vec<String>,
) {
    match format {
        Format::Json => print_json(answer),
        Format::Text => {
            let rows: Vec<Vec<String>> = rows.iter().map(row).collect();
            println!("{}", table(headers, &rows));
        }
    }
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligned() {
        let t = super::table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1");
    }
}
