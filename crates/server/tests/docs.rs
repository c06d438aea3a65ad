//! The operator docs that state facts the code decides: each is held to
//! the code here.

use portunus_domain::ErrorCode;

/// Every stable error code has one row in operations.md's troubleshooting
/// table, with the HTTP status and exit code the code table gives it.
#[test]
fn operations_md_troubleshoots_every_error_code() {
    let doc = include_str!("../../../docs/operations.md");
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split('|').map(str::trim).collect())
        .filter(|cells: &Vec<&str>| cells.len() == 6 && cells[2].parse::<u16>().is_ok())
        .collect();
    for code in ErrorCode::ALL {
        let name = format!("`{code}`");
        let found: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == name).collect();
        assert_eq!(
            found.len(),
            1,
            "{code}: one row in the troubleshooting table"
        );
        let row = found[0];
        assert_eq!(
            row[2],
            code.http_status().to_string(),
            "{code}: HTTP status"
        );
        assert_eq!(row[3], code.exit_code().to_string(), "{code}: exit code");
    }
    assert_eq!(
        rows.len(),
        ErrorCode::ALL.len(),
        "no rows for unknown codes"
    );
}
