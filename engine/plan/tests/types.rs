//! Spark's type derivation and implicit coercion, checked through SQL: each expression's output
//! type and nullability.

use weir_plan::sql::Catalog;
use weir_plan::sql_to_plan;

fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    catalog
        .execute_script(
            "CREATE SOURCE t (i INT, l BIGINT, d DOUBLE, s STRING, dec DECIMAL(10,2), dec2 DECIMAL(5,3), \
             big DECIMAL(38,10), ts TIMESTAMP, nn INT NOT NULL) WITH (format = 'memory')",
        )
        .unwrap();
    catalog
}

fn output_type(expr: &str) -> String {
    let sql = format!("SELECT {expr} FROM t");
    let plan =
        sql_to_plan(&catalog(), &sql).unwrap_or_else(|e| panic!("{}", e.render_with_source(&sql)));
    let field = plan.schema().field(0).clone();
    let null = if field.is_nullable() { "" } else { " not null" };
    format!(
        "{}{null}",
        weir_plan::expr::spark_type_name(field.data_type())
    )
}

fn aggregate_type(expr: &str) -> String {
    output_type(expr)
}

#[test]
fn arithmetic_follows_spark() {
    let cases = [
        ("i / i", "double"),
        ("l * i", "bigint"),
        ("i + l", "bigint"),
        ("i + d", "double"),
        ("s + i", "double"),
        ("i % l", "bigint"),
        ("nn + 1", "int not null"),
        ("nn / 1", "double"),
        ("dec + dec2", "decimal(12,3)"),
        ("dec - i", "decimal(13,2)"),
        ("dec * dec2", "decimal(16,5)"),
        ("dec / dec2", "decimal(19,8)"),
        ("dec % dec2", "decimal(5,3)"),
        ("big * big", "decimal(38,6)"),
        ("dec + d", "double"),
        ("ts - ts", "interval day to second"),
        ("ts + INTERVAL '1' HOUR", "timestamp"),
        ("-i", "int"),
        ("s || i", "string"),
    ];
    for (expr, expected) in cases {
        assert_eq!(output_type(expr), expected, "{expr}");
    }
}

#[test]
fn literals_are_typed_as_spark_types_them() {
    let cases = [
        ("1", "int not null"),
        ("2147483648", "bigint not null"),
        ("10L", "bigint not null"),
        ("1.5", "decimal(2,1) not null"),
        ("0.001", "decimal(3,3) not null"),
        ("1e3", "double not null"),
        ("'x'", "string not null"),
        ("true", "boolean not null"),
        ("NULL", "void"),
        ("TIMESTAMP '2024-01-01 00:00:00'", "timestamp not null"),
        ("DATE '2024-02-29'", "date not null"),
        ("INTERVAL '5' SECOND", "interval day to second not null"),
    ];
    for (expr, expected) in cases {
        assert_eq!(output_type(expr), expected, "{expr}");
    }
}

#[test]
fn comparisons_conditionals_and_functions() {
    let cases = [
        ("s = i", "boolean"),
        ("ts > '2024-01-01'", "boolean"),
        ("i IN (1, 2L, 3)", "boolean"),
        ("i BETWEEN 1 AND d", "boolean"),
        ("i IS NULL", "boolean not null"),
        ("coalesce(i, l)", "bigint"),
        ("coalesce(i, 0)", "int not null"),
        ("CASE WHEN i > 0 THEN i ELSE d END", "double"),
        ("CASE i WHEN 1 THEN 'one' END", "string"),
        ("if(i > 0, 'a', 'b')", "string"),
        ("upper(s)", "string"),
        ("length(s)", "int"),
        ("split(s, ',')", "array<string>"),
        ("to_timestamp(s)", "timestamp"),
        ("date_trunc('hour', ts)", "timestamp"),
        ("hour(ts)", "int"),
        ("round(dec, 1)", "decimal(10,1)"),
        ("abs(i)", "int"),
        ("CAST(s AS BIGINT)", "bigint"),
        ("TRY_CAST(s AS DOUBLE)", "double"),
        ("window(ts, '1 minute').start", "timestamp"),
        ("current_timestamp()", "timestamp not null"),
        ("s LIKE 'a%'", "boolean"),
        ("s RLIKE '^a'", "boolean"),
    ];
    for (expr, expected) in cases {
        assert_eq!(output_type(expr), expected, "{expr}");
    }
}

#[test]
fn aggregates_follow_spark() {
    let cases = [
        ("count(*)", "bigint not null"),
        ("count(s)", "bigint not null"),
        ("sum(i)", "bigint"),
        ("sum(d)", "double"),
        ("sum(dec)", "decimal(20,2)"),
        ("avg(i)", "double"),
        ("avg(dec)", "decimal(14,6)"),
        ("min(s)", "string"),
        ("max(ts)", "timestamp"),
        ("first(l)", "bigint"),
        ("approx_count_distinct(s)", "bigint not null"),
        ("sum(i) / count(*)", "double"),
    ];
    for (expr, expected) in cases {
        assert_eq!(aggregate_type(expr), expected, "{expr}");
    }
}

#[test]
fn names_are_spark_style() {
    let plan = sql_to_plan(
        &catalog(),
        "SELECT i + 1, upper(s), count(*), window(ts, '10 seconds') FROM t GROUP BY 1, 2, 4",
    )
    .unwrap();
    let names: Vec<&str> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["(i + 1)", "upper(s)", "count(1)", "window"]);
}
