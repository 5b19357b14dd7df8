"""What a file is: finding images under a folder and decoding them."""
