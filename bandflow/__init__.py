"""bandflow: band alignment (IP, EA) of nonpolar oxide surfaces, computed and predicted."""

__version__ = "0.1.0"
