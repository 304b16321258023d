//! The console sink: prints each batch like Spark's `ConsoleSink` (a `Batch: N` banner and a
//! `Dataset.show()` table), or one JSON object per row with `outputFormat=json`.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::sink::format::{Json, json_rows, show_value};
use crate::sink::{Sink, SinkOutputMode};
use crate::source::SourceOptions;

/// How the console sink prints rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Table,
    Json,
}

/// Prints batches to a writer (stdout by default).
pub(crate) struct ConsoleSink {
    num_rows: usize,
    /// Cell width limit; `None` = `truncate=false`.
    truncate: Option<usize>,
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    last_batch: Option<u64>,
}

impl ConsoleSink {
    pub(crate) fn new(opts: &SourceOptions, out: Box<dyn Write + Send>) -> Result<ConsoleSink> {
        let num_rows = opts.int("numRows", 0)?.unwrap_or(20);
        let truncate = match opts.get("truncate") {
            None => Some(20),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Some(20),
                "false" => None,
                n => match n.parse::<usize>() {
                    Ok(0) => None,
                    Ok(width) => Some(width),
                    Err(_) => {
                        return Err(Error::option(
                            "truncate",
                            format!("'{v}' is not true, false or a cell width"),
                        ));
                    }
                },
            },
        };
        let format = match opts
            .get("outputFormat")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("table") => OutputFormat::Table,
            Some("json") => OutputFormat::Json,
            Some(other) => {
                return Err(Error::option(
                    "outputFormat",
                    format!("'{other}' is not an output format; use table or json"),
                ));
            }
        };
        Ok(ConsoleSink {
            num_rows: usize::try_from(num_rows).unwrap_or(usize::MAX),
            truncate,
            format,
            out,
            last_batch: None,
        })
    }

    fn render_table(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> String {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut rows: Vec<Vec<String>> = Vec::new();
        'outer: for batch in batches {
            for row in 0..batch.num_rows() {
                if rows.len() == self.num_rows {
                    break 'outer;
                }
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| self.cut(show_value(c, row)))
                        .collect(),
                );
            }
        }
        let header: Vec<String> = names.into_iter().map(|n| self.cut(n)).collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let sep: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(*w)))
            .collect::<String>()
            + "+\n";
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (cell, w) in cells.iter().zip(&widths) {
                let pad = " ".repeat(w - cell.chars().count());
                if self.truncate.is_some() {
                    s.push_str(&format!("|{pad}{cell}"));
                } else {
                    s.push_str(&format!("|{cell}{pad}"));
                }
            }
            s + "|\n"
        };
        let mut text = sep.clone();
        text.push_str(&line(&header));
        text.push_str(&sep);
        for row in &rows {
            text.push_str(&line(row));
        }
        text.push_str(&sep);
        if total > rows.len() {
            let noun = if rows.len() == 1 { "row" } else { "rows" };
            text.push_str(&format!("only showing top {} {noun}\n", rows.len()));
        }
        text
    }

    /// Spark's cell truncation: longer than `n` → first `n - 3` characters and `...`.
    fn cut(&self, s: String) -> String {
        match self.truncate {
            Some(n) if s.chars().count() > n => {
                if n < 4 {
                    s.chars().take(n).collect()
                } else {
                    s.chars().take(n - 3).collect::<String>() + "..."
                }
            }
            _ => s,
        }
    }
}

impl Sink for ConsoleSink {
    fn description(&self) -> String {
        format!(
            "ConsoleSink[numRows={}, truncate={}]",
            self.num_rows,
            self.truncate.is_some()
        )
    }

    fn add_batch(
        &mut self,
        batch_id: u64,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        _mode: SinkOutputMode,
    ) -> Result<()> {
        if self.last_batch.is_some_and(|last| batch_id <= last) {
            return Ok(());
        }
        let text = match self.format {
            OutputFormat::Table => format!(
                "-------------------------------------------\nBatch: {batch_id}\n-------------------------------------------\n{}\n",
                self.render_table(schema, batches)
            ),
            OutputFormat::Json => {
                let mut text = String::new();
                for batch in batches {
                    for row in json_rows(batch) {
                        let mut object =
                            vec![("batchId".to_string(), Json::Scalar(Value::from(batch_id)))];
                        object.extend(row);
                        text.push_str(&Json::Object(object).to_text());
                        text.push('\n');
                    }
                }
                text
            }
        };
        let io = |e: std::io::Error| Error::Sink {
            sink: "console".into(),
            message: format!("cannot write to the console: {e}"),
        };
        self.out.write_all(text.as_bytes()).map_err(io)?;
        self.out.flush().map_err(io)?;
        self.last_batch = Some(batch_id);
        Ok(())
    }
}
