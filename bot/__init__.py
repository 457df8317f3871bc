"""Xiaoer (店小二): the asyncio core of an open-source customer-service bot for online shops."""

__version__ = "0.1.0"
