"""pyrbench under fdtserver: the query through the fdt module (resource pg)."""
import pyrbench

application = pyrbench.make(pyrbench.fdt_query)
