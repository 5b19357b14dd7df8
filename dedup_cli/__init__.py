"""dedup: find near-duplicate images with perceptual hashes and remove them safely."""

__version__ = "0.1.0"
