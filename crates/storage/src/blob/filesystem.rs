//! Blobs as files: `blobs/<alg>/<first two hex>/<hex>`, uploads staged in `uploads/<id>`.
//!
//! A staged upload is one file that grows part by part (each part `fdatasync`ed before it is
//! acknowledged); completing it is a rename into place plus an fsync of the directory, so a
//! blob is never visible half-written and committing costs no copy.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use futures_util::StreamExt;
use model::{Digest, UploadId};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{BlobRange, BlobReader, BlobStore, ByteStream};
use crate::StorageError;

/// Read buffer for blob downloads: large enough that a GiB download is a few thousand reads.
const READ_CHUNK: usize = 256 * 1024;

pub struct FilesystemBlobStore {
    root: PathBuf,
    /// Aligned buffers for direct writes of upload parts.
    blocks: Arc<super::direct::BlockPool>,
}

impl FilesystemBlobStore {
    pub async fn open(root: &Path) -> Result<Self, StorageError> {
        fs::create_dir_all(root.join("blobs")).await?;
        fs::create_dir_all(root.join("uploads")).await?;
        Ok(Self {
            root: root.to_path_buf(),
            blocks: Arc::default(),
        })
    }

    /// The same store with a budget of `parts` second blocks for direct writes (tests).
    #[cfg(test)]
    pub(crate) fn with_overlap(mut self, parts: usize) -> Self {
        self.blocks = Arc::new(super::direct::BlockPool::with_overlap(parts));
        self
    }

    /// Second blocks not taken now (tests).
    #[cfg(test)]
    pub(crate) fn spare_overlap(&self) -> usize {
        self.blocks.spare_overlap()
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_path(&self, upload: UploadId) -> PathBuf {
        self.root.join("uploads").join(upload.to_string())
    }

    /// Writes a part into the staged file at `offset`, cutting off anything staged past it.
    async fn write_staged(
        &self,
        upload: UploadId,
        offset: u64,
        mut data: ByteStream,
        observe: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
    ) -> Result<u64, StorageError> {
        let path = self.upload_path(upload);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .await?;
        let staged = file.metadata().await?.len();
        if staged < offset {
            // The metadata store acknowledged bytes this file does not hold: refuse rather
            // than produce a blob with a hole.
            return Err(StorageError::Other(
                format!("upload {upload}: {staged} bytes staged but part starts at {offset}")
                    .into(),
            ));
        }
        if staged > offset {
            file.set_len(offset).await?; // drop a part that was written but never acknowledged
        }
        // Past the page cache where the file system allows (see direct.rs).
        if let Some(direct) = super::direct::open(&path).await? {
            drop(file);
            return super::direct::write_part(&self.blocks, &path, direct, offset, data, observe)
                .await;
        }
        file.seek(SeekFrom::Start(offset)).await?;
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| StorageError::SourceFailed(e.to_string()))?;
            observe(&chunk);
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        file.flush().await?;
        file.sync_data().await?;
        Ok(written)
    }
}

fn read_dir_or_empty(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// Makes a rename or unlink in `dir` durable.
async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| StorageError::Other(Box::new(e)))??;
    Ok(())
}

#[async_trait]
impl BlobStore for FilesystemBlobStore {
    async fn write_part(
        &self,
        upload: UploadId,
        offset: u64,
        _staging: &[u8],
        data: ByteStream,
        observe: &mut (dyn for<'b> FnMut(&'b [u8]) + Send),
    ) -> Result<(u64, Vec<u8>), StorageError> {
        // The staged file itself is the state: nothing to save beside it.
        let written = self.write_staged(upload, offset, data, observe).await?;
        Ok((written, Vec::new()))
    }

    async fn commit_upload(
        &self,
        upload: UploadId,
        _staging: &[u8],
        size: u64,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let src = self.upload_path(upload);
        let dst = self.blob_path(digest);
        let dir = dst.parent().expect("blob path has a parent").to_path_buf();
        fs::create_dir_all(&dir).await?;
        // A commit interrupted after its rename is finished already: the staged file is the
        // blob now. (The caller verified the digest from the saved hash state.)
        if !fs::try_exists(&src).await? && size > 0 {
            if fs::metadata(&dst).await.is_ok_and(|m| m.len() == size) {
                return Ok(());
            }
            return Err(StorageError::NotFound);
        }
        // An empty upload never wrote a part, so it has no staged file yet.
        let file = fs::OpenOptions::new()
            .create(size == 0)
            .write(true)
            .truncate(false)
            .open(&src)
            .await?;
        if file.metadata().await?.len() != size {
            file.set_len(size).await?;
            file.sync_all().await?;
        }
        drop(file);
        // Renaming over an existing blob of the same digest is harmless: same bytes.
        fs::rename(&src, &dst).await?;
        sync_dir(&dir).await?;
        Ok(())
    }

    async fn read_upload(
        &self,
        upload: UploadId,
        _staging: &[u8],
        size: u64,
    ) -> Result<ByteStream, StorageError> {
        if size == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let file = fs::File::open(self.upload_path(upload)).await?;
        Ok(Box::pin(ReaderStream::with_capacity(
            file.take(size),
            READ_CHUNK,
        )))
    }

    async fn delete_upload(&self, upload: UploadId, _staging: &[u8]) -> Result<(), StorageError> {
        match fs::remove_file(self.upload_path(upload)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn open(
        &self,
        digest: &Digest,
        range: Option<BlobRange>,
    ) -> Result<BlobReader, StorageError> {
        let mut file = fs::File::open(self.blob_path(digest)).await?;
        let size = file.metadata().await?.len();
        let (start, len) = match range {
            Some(r) => (r.first, r.last - r.first + 1),
            None => (0, size),
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await?;
        }
        let body = ReaderStream::with_capacity(file.take(len), READ_CHUNK);
        Ok(BlobReader {
            size,
            body: Box::pin(body),
        })
    }

    async fn open_file(&self, digest: &Digest) -> Result<Option<std::fs::File>, StorageError> {
        match fs::File::open(self.blob_path(digest)).await {
            Ok(f) => Ok(Some(f.into_std().await)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_blobs(&self) -> Result<Vec<(Digest, u64, SystemTime)>, StorageError> {
        let root = self.root.join("blobs");
        tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let mut out = Vec::new();
            for alg in read_dir_or_empty(&root)? {
                let alg_name = alg.file_name().to_string_lossy().into_owned();
                for prefix in read_dir_or_empty(&alg.path())? {
                    for f in read_dir_or_empty(&prefix.path())? {
                        let name = f.file_name().to_string_lossy().into_owned();
                        // Anything that is not a well-formed blob name is not a blob.
                        if let Ok(d) = Digest::parse(&format!("{alg_name}:{name}")) {
                            let m = f.metadata()?;
                            out.push((d, m.len(), m.modified()?));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Other(Box::new(e)))?
    }

    async fn list_uploads(&self) -> Result<Vec<(UploadId, SystemTime)>, StorageError> {
        let root = self.root.join("uploads");
        tokio::task::spawn_blocking(move || -> Result<_, StorageError> {
            let mut out = Vec::new();
            for f in read_dir_or_empty(&root)? {
                if let Some(id) = UploadId::parse(&f.file_name().to_string_lossy()) {
                    out.push((id, f.metadata()?.modified()?));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Other(Box::new(e)))?
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StorageError> {
        match fs::remove_file(self.blob_path(digest)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
