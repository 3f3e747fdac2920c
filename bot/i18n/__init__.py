"""Every text the bot shows, in the member's language: gettext catalogs read with Babel.

`catalog.Translator` loads the catalogs (the .po files under bot/locale are the source, compiled
in memory at load); `catalog.Language` is one language's view: gettext, plurals, dates, numbers,
territory names and bidi isolation for right-to-left scripts.
"""
