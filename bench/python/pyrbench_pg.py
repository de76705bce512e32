"""pyrbench under gunicorn and uWSGI: psycopg2 and the pyramid_tm-style tween."""
import pyrbench

application = pyrbench.make(pyrbench.psycopg2_query, tweens=("pyrbench.tm_tween_factory",))
