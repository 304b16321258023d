//! The SQL catalog: the sources, static tables, views and sinks a script has declared, and the
//! execution of DDL statements against it.
//!
//! Owns name lookup (case-insensitive, as Spark's default) and DDL semantics; must not start
//! queries (the engine runs sinks) or parse SQL text itself (that is `parser`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{Fields, Schema};

use crate::analyzer::check_streaming;
use crate::builder::LogicalPlanBuilder;
use crate::error::{Error, Result, Rule};
use crate::plan::{LogicalPlan, OutputMode, Source, SubqueryAlias};
use crate::sql::parser::{CreateSource, ObjectKind, Statement, parse_sql, parse_statement};
use crate::sql::planner::QueryPlanner;

/// A named query (`CREATE VIEW`).
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDefinition {
    /// Name as declared.
    pub name: String,
    /// The view's plan, resolved when it was created.
    pub plan: LogicalPlan,
}

/// A streaming query with its sink (`CREATE SINK`).
#[derive(Debug, Clone, PartialEq)]
pub struct SinkDefinition {
    /// Name as declared (the default query name).
    pub name: String,
    /// Writer options as written, including `format`, `path`, `trigger`, `checkpointLocation`.
    pub options: BTreeMap<String, String>,
    /// The `outputMode` option (Append when absent).
    pub output_mode: OutputMode,
    /// The query's plan, already checked with [`check_streaming`] for `output_mode`.
    pub plan: LogicalPlan,
}

/// What executing a statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementResult {
    /// An object was created (or replaced).
    Created {
        /// Kind.
        kind: ObjectKind,
        /// Name.
        name: String,
    },
    /// An object was dropped (or did not exist, with IF EXISTS).
    Dropped {
        /// Kind.
        kind: ObjectKind,
        /// Name.
        name: String,
    },
    /// `SHOW ...`: names in order.
    Listed(Vec<String>),
    /// A query's plan.
    Query(LogicalPlan),
    /// `EXPLAIN [CODEGEN]`: the query's plan.
    Explain {
        /// `EXPLAIN CODEGEN`.
        codegen: bool,
        /// The plan to explain.
        plan: LogicalPlan,
    },
}

/// Declared sources, tables, views and sinks. Names are case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    sources: BTreeMap<String, Source>,
    tables: BTreeMap<String, Source>,
    views: BTreeMap<String, ViewDefinition>,
    sinks: BTreeMap<String, SinkDefinition>,
    /// Sink keys in the order they were declared (queries start in script order).
    sink_order: Vec<String>,
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a streaming source (`source.streaming` must be true).
    pub fn register_source(&mut self, source: Source) -> Result<()> {
        if !source.streaming {
            return Err(Error::analysis(
                Rule::Catalog,
                format!("`{}` is not a stream; register it as a table", source.name),
            ));
        }
        self.ensure_free(&source.name)?;
        LogicalPlanBuilder::scan(source.clone())?;
        self.sources.insert(key(&source.name), source);
        Ok(())
    }

    /// Declare a static table (`table.streaming` must be false).
    pub fn register_table(&mut self, table: Source) -> Result<()> {
        if table.streaming {
            return Err(Error::analysis(
                Rule::Catalog,
                format!("`{}` is a stream; register it as a source", table.name),
            ));
        }
        self.ensure_free(&table.name)?;
        LogicalPlanBuilder::scan(table.clone())?;
        self.tables.insert(key(&table.name), table);
        Ok(())
    }

    /// A source by name.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.get(&key(name))
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&Source> {
        self.tables.get(&key(name))
    }

    /// A view by name.
    pub fn view(&self, name: &str) -> Option<&ViewDefinition> {
        self.views.get(&key(name))
    }

    /// A sink by name.
    pub fn sink(&self, name: &str) -> Option<&SinkDefinition> {
        self.sinks.get(&key(name))
    }

    /// All sinks, in name order.
    pub fn sinks(&self) -> impl Iterator<Item = &SinkDefinition> {
        self.sink_order.iter().filter_map(|k| self.sinks.get(k))
    }

    /// Declared names of one kind, in order.
    pub fn names(&self, kind: ObjectKind) -> Vec<String> {
        match kind {
            ObjectKind::Source => self.sources.values().map(|s| s.name.clone()).collect(),
            ObjectKind::Table => self.tables.values().map(|s| s.name.clone()).collect(),
            ObjectKind::View => self.views.values().map(|v| v.name.clone()).collect(),
            ObjectKind::Sink => self.sinks.values().map(|s| s.name.clone()).collect(),
        }
    }

    fn kind_of(&self, name: &str) -> Option<ObjectKind> {
        let k = key(name);
        if self.sources.contains_key(&k) {
            Some(ObjectKind::Source)
        } else if self.tables.contains_key(&k) {
            Some(ObjectKind::Table)
        } else if self.views.contains_key(&k) {
            Some(ObjectKind::View)
        } else if self.sinks.contains_key(&k) {
            Some(ObjectKind::Sink)
        } else {
            None
        }
    }

    fn ensure_free(&self, name: &str) -> Result<()> {
        match self.kind_of(name) {
            Some(kind) => Err(Error::analysis(
                Rule::Catalog,
                format!(
                    "Cannot create `{name}` because a {} with that name already exists. Drop it first, or use \
                     CREATE OR REPLACE.",
                    kind.name()
                ),
            )),
            None => Ok(()),
        }
    }

    /// The plan reading a source, table or view by name (with its declared watermark).
    pub fn relation_plan(&self, name: &str) -> Result<LogicalPlan> {
        let k = key(name);
        if let Some(source) = self.sources.get(&k).or_else(|| self.tables.get(&k)) {
            return Ok(LogicalPlanBuilder::scan(source.clone())?.build());
        }
        if let Some(view) = self.views.get(&k) {
            return Ok(LogicalPlan::SubqueryAlias(SubqueryAlias {
                input: Arc::new(view.plan.clone()),
                alias: view.name.clone(),
            }));
        }
        let known: Vec<&str> = self
            .sources
            .values()
            .chain(self.tables.values())
            .map(|s| s.name.as_str())
            .chain(self.views.values().map(|v| v.name.as_str()))
            .collect();
        let mut close: Vec<(usize, &str)> = known
            .iter()
            .map(|n| (crate::analyzer::edit_distance(name, n), *n))
            .filter(|(d, _)| *d <= 3)
            .collect();
        close.sort();
        let hint = match close.first() {
            Some((_, n)) => format!(" Did you mean `{n}`?"),
            None => {
                " Declare it with CREATE SOURCE, CREATE TABLE or CREATE VIEW first.".to_string()
            }
        };
        Err(Error::analysis(
            Rule::Catalog,
            format!("The table or view `{name}` cannot be found.{hint}"),
        )
        .with_expr(name))
    }

    /// Run one statement: DDL changes the catalog; queries and EXPLAIN return their plan.
    pub fn execute(&mut self, statement: &Statement) -> Result<StatementResult> {
        match statement {
            Statement::Query(query) => Ok(StatementResult::Query(
                QueryPlanner::new(self).plan_query(query)?,
            )),
            Statement::Explain { codegen, query } => Ok(StatementResult::Explain {
                codegen: *codegen,
                plan: QueryPlanner::new(self).plan_query(query)?,
            }),
            Statement::CreateSource(create) => self.create_source(create, true),
            Statement::CreateTable(create) => self.create_source(create, false),
            Statement::CreateView(create) => {
                if !create.or_replace && self.kind_of(&create.name).is_some() {
                    return Err(conflict(&create.name, create.span));
                }
                let plan = QueryPlanner::new(self).plan_query(&create.query)?;
                self.remove_any(&create.name);
                self.views.insert(
                    key(&create.name),
                    ViewDefinition {
                        name: create.name.clone(),
                        plan,
                    },
                );
                Ok(StatementResult::Created {
                    kind: ObjectKind::View,
                    name: create.name.clone(),
                })
            }
            Statement::CreateSink(create) => {
                if !create.or_replace && self.kind_of(&create.name).is_some() {
                    return Err(conflict(&create.name, create.span));
                }
                let output_mode = match create
                    .options
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("outputMode"))
                {
                    Some((_, v)) => v
                        .parse::<OutputMode>()
                        .map_err(|e| e.with_span(create.span))?,
                    None => OutputMode::Append,
                };
                let plan = QueryPlanner::new(self).plan_query(&create.query)?;
                check_streaming(&plan, output_mode)?;
                self.remove_any(&create.name);
                self.sink_order.retain(|k| k != &key(&create.name));
                self.sink_order.push(key(&create.name));
                self.sinks.insert(
                    key(&create.name),
                    SinkDefinition {
                        name: create.name.clone(),
                        options: create.options.clone(),
                        output_mode,
                        plan,
                    },
                );
                Ok(StatementResult::Created {
                    kind: ObjectKind::Sink,
                    name: create.name.clone(),
                })
            }
            Statement::Drop {
                kind,
                name,
                if_exists,
                span,
            } => {
                let k = key(name);
                let removed = match kind {
                    ObjectKind::Source => self.sources.remove(&k).is_some(),
                    ObjectKind::Table => self.tables.remove(&k).is_some(),
                    ObjectKind::View => self.views.remove(&k).is_some(),
                    ObjectKind::Sink => self.sinks.remove(&k).is_some(),
                };
                if !removed && !if_exists {
                    return Err(Error::analysis(
                        Rule::Catalog,
                        format!("Cannot drop {} `{name}`: it does not exist. Use DROP {} IF EXISTS to ignore this.", kind.name(), kind.name().to_ascii_uppercase()),
                    )
                    .with_span(*span));
                }
                Ok(StatementResult::Dropped {
                    kind: *kind,
                    name: name.clone(),
                })
            }
            Statement::Show(kind) => Ok(StatementResult::Listed(self.names(*kind))),
        }
    }

    /// Parse and run a `;`-separated script, statement by statement (stopping at the first error).
    pub fn execute_script(&mut self, sql: &str) -> Result<Vec<StatementResult>> {
        let statements = parse_sql(sql)?;
        statements.iter().map(|s| self.execute(s)).collect()
    }

    fn remove_any(&mut self, name: &str) {
        let k = key(name);
        self.sources.remove(&k);
        self.tables.remove(&k);
        self.views.remove(&k);
        self.sinks.remove(&k);
    }

    fn create_source(&mut self, create: &CreateSource, streaming: bool) -> Result<StatementResult> {
        let kind = if streaming {
            ObjectKind::Source
        } else {
            ObjectKind::Table
        };
        if self.kind_of(&create.name).is_some() {
            if create.if_not_exists {
                return Ok(StatementResult::Created {
                    kind,
                    name: create.name.clone(),
                });
            }
            if !create.or_replace {
                return Err(conflict(&create.name, create.span));
            }
        }
        let mut options = create.options.clone();
        let format_key = options
            .keys()
            .find(|k| k.eq_ignore_ascii_case("format"))
            .cloned();
        let Some(format) = format_key.and_then(|k| options.remove(&k)) else {
            return Err(Error::analysis(
                Rule::Catalog,
                format!(
                    "CREATE {} `{}` needs a format: add WITH (format = 'csv' | 'json' | 'parquet' | 'rate' | ...).",
                    kind.name().to_ascii_uppercase(),
                    create.name
                ),
            )
            .with_span(create.span));
        };
        let schema = Arc::new(Schema::new(Fields::from(
            create
                .columns
                .iter()
                .map(|c| c.to_field())
                .collect::<Vec<_>>(),
        )));
        let mut source = Source::new(
            create.name.clone(),
            format.to_ascii_lowercase(),
            schema,
            streaming,
        );
        source.options = options;
        if let Some(w) = &create.watermark {
            source = source.with_watermark(w.column.clone(), w.delay_us);
            // Validate the watermark column now, with the clause's position.
            LogicalPlanBuilder::scan(source.clone()).map_err(|e| e.with_span(w.span))?;
        }
        self.remove_any(&create.name);
        if streaming {
            self.sources.insert(key(&create.name), source);
        } else {
            self.tables.insert(key(&create.name), source);
        }
        Ok(StatementResult::Created {
            kind,
            name: create.name.clone(),
        })
    }
}

fn conflict(name: &str, span: Option<crate::error::Span>) -> Error {
    Error::analysis(
        Rule::Catalog,
        format!("Cannot create `{name}` because an object with that name already exists. Drop it first, or use CREATE OR REPLACE."),
    )
    .with_span(span)
}

/// Plan one SQL query (`SELECT ...`, optionally with `EXPLAIN`) against the catalog.
pub fn sql_to_plan(catalog: &Catalog, sql: &str) -> Result<LogicalPlan> {
    match parse_statement(sql)? {
        Statement::Query(query) | Statement::Explain { query, .. } => {
            QueryPlanner::new(catalog).plan_query(&query)
        }
        _ => Err(Error::analysis(
            Rule::UnsupportedFeature,
            "Expected a query (SELECT ...); run DDL statements with Catalog::execute",
        )),
    }
}
