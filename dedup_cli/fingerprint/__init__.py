"""What a picture looks like in a few bytes: perceptual hashes, colour signatures, the cache."""
