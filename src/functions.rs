//! DataFrame functions with Spark's names (`org.apache.spark.sql.functions`), building
//! weir-plan expressions. Owns nothing else.

use weir_plan::expr::{self, AggregateFunction, Expr, SortExpr};

/// A column by name.
pub fn col(name: &str) -> Expr {
    expr::col(name)
}

/// A literal value.
pub fn lit(value: impl Into<weir_plan::ScalarValue>) -> Expr {
    expr::lit(value)
}

/// `window(time, "10 seconds")`: a tumbling event-time window (`struct<start, end>`).
pub fn window(time: Expr, size: &str) -> weir_engine::Result<Expr> {
    Ok(expr::window(time, size, None, None)?)
}

/// `window(time, size, slide)`: a sliding event-time window.
pub fn sliding_window(time: Expr, size: &str, slide: &str) -> weir_engine::Result<Expr> {
    Ok(expr::window(time, size, Some(slide), None)?)
}

/// `session_window(time, gap)`.
pub fn session_window(time: Expr, gap: &str) -> weir_engine::Result<Expr> {
    Ok(expr::session_window(time, gap)?)
}

/// `count(x)` (non-null values); `count(lit(1))` counts rows.
pub fn count(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::Count, e)
}

/// `count(*)`.
pub fn count_star() -> Expr {
    expr::count_star()
}

/// `sum(x)`.
pub fn sum(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::Sum, e)
}

/// `avg(x)`.
pub fn avg(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::Avg, e)
}

/// `min(x)`.
pub fn min(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::Min, e)
}

/// `max(x)`.
pub fn max(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::Max, e)
}

/// `first(x)`.
pub fn first(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::First, e)
}

/// `last(x)`.
pub fn last(e: Expr) -> Expr {
    expr::aggregate(AggregateFunction::Last, e)
}

/// Any scalar function by its Spark name, e.g. `call("upper", vec![col("s")])`.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    expr::func(name, args)
}

/// Ascending sort key.
pub fn asc(e: Expr) -> SortExpr {
    SortExpr::asc(e)
}

/// Descending sort key.
pub fn desc(e: Expr) -> SortExpr {
    SortExpr::desc(e)
}
