"""Connector drivers: one package per external tool, each implementing ports.connector."""
