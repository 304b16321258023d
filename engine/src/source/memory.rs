//! [`MemoryStream`]: an in-process source fed from Rust (`add_data`), for tests and for
//! embedding. Offsets are Spark's: a bare number, the index of the newest block added.

use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::source::{Offset, ReadLimit, Source, valid_projection};

#[derive(Debug)]
struct Blocks {
    schema: SchemaRef,
    blocks: Vec<Vec<RecordBatch>>,
}

/// A stream of record batches added from Rust. Clones share the same data, so a test keeps a
/// clone to add data while the query reads from [`MemoryStream::source`].
#[derive(Clone, Debug)]
pub struct MemoryStream {
    inner: Arc<Mutex<Blocks>>,
}

impl MemoryStream {
    /// An empty stream of `schema`.
    pub fn new(schema: SchemaRef) -> MemoryStream {
        MemoryStream {
            inner: Arc::new(Mutex::new(Blocks {
                schema,
                blocks: Vec::new(),
            })),
        }
    }

    /// Adds one block of batches (one future micro-batch at most) and returns its offset.
    /// Batches whose schema differs from the stream's fail the query when they are read.
    pub fn add_data(&self, batches: Vec<RecordBatch>) -> Offset {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.blocks.push(batches);
        Offset((inner.blocks.len() - 1).to_string())
    }

    /// Adds one batch as one block.
    pub fn add_batch(&self, batch: RecordBatch) -> Offset {
        self.add_data(vec![batch])
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .schema
            .clone()
    }

    /// A source reading this stream.
    pub fn source(&self) -> Box<dyn Source> {
        Box::new(MemorySource {
            stream: self.clone(),
            projection: None,
        })
    }
}

struct MemorySource {
    stream: MemoryStream,
    projection: Option<Vec<usize>>,
}

impl MemorySource {
    fn parse(&self, offset: &Offset) -> Result<usize> {
        offset
            .as_str()
            .trim()
            .parse::<usize>()
            .map_err(|_| Error::Source {
                source_name: self.description(),
                message: format!("'{offset}' is not a memory stream offset (a block index)"),
            })
    }
}

impl Source for MemorySource {
    fn description(&self) -> String {
        let schema = self.stream.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        format!("MemoryStream[{}]", names.join(","))
    }

    fn schema(&self) -> SchemaRef {
        self.stream.schema()
    }

    fn default_read_limit(&self) -> ReadLimit {
        ReadLimit::All
    }

    fn latest_offset(
        &mut self,
        start: Option<&Offset>,
        _limit: ReadLimit,
    ) -> Result<Option<Offset>> {
        let inner = self
            .stream
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match inner.blocks.len() {
            0 => Ok(start.cloned()),
            n => Ok(Some(Offset((n - 1).to_string()))),
        }
    }

    fn available_now_offset(&mut self) -> Result<Option<Offset>> {
        self.latest_offset(None, ReadLimit::All)
    }

    fn read(&mut self, start: Option<&Offset>, end: &Offset) -> Result<Vec<RecordBatch>> {
        let from = match start {
            Some(o) => self.parse(o)? + 1,
            None => 0,
        };
        let to = self.parse(end)?;
        let description = self.description();
        let inner = self
            .stream
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if to >= inner.blocks.len() {
            return Err(Error::Source {
                source_name: description.clone(),
                message: format!(
                    "offset {to} was never added (the stream holds {} blocks); a memory stream \
                     does not survive a process restart",
                    inner.blocks.len()
                ),
            });
        }
        let mut out = Vec::new();
        for block in inner.blocks.iter().take(to + 1).skip(from) {
            for batch in block {
                if batch.schema().fields() != inner.schema.fields() {
                    return Err(Error::Source {
                        source_name: description.clone(),
                        message: format!(
                            "a batch added with schema {:?} does not match the stream's schema {:?}",
                            batch.schema(),
                            inner.schema
                        ),
                    });
                }
                out.push(match &self.projection {
                    Some(cols) => batch.project(cols)?,
                    None => batch.clone(),
                });
            }
        }
        Ok(out)
    }

    fn commit(&mut self, _end: &Offset) -> Result<()> {
        Ok(())
    }

    fn push_projection(&mut self, columns: &[usize]) {
        self.projection = valid_projection(&self.stream.schema(), columns);
    }
}
